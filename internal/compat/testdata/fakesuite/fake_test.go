// Package fakesuite is a test suite for internal/compat's own tests: it has
// one test of each outcome, a parent that waits for its parallel subtests
// longer than the per-test limit those tests use, and a test that hangs
// when FAKE_HANG=1, followed by tests that run only after a resume.
package fakesuite

import (
	"os"
	"strconv"
	"testing"
	"time"
)

func TestPass(t *testing.T) {}

func TestFail(t *testing.T) { t.Error("boom") }

func TestSkip(t *testing.T) { t.Skip("needs a server this suite does not have") }

func TestSubFail(t *testing.T) {
	t.Run("ok", func(t *testing.T) {})
	t.Run("bad", func(t *testing.T) { t.Error("sub boom") })
}

// TestParallelWaits waits about 3.6 s for three parallel subtests that run
// one at a time (-test.parallel=1), each well under the limit.
func TestParallelWaits(t *testing.T) {
	for i := range 3 {
		t.Run(strconv.Itoa(i), func(t *testing.T) {
			t.Parallel()
			time.Sleep(1200 * time.Millisecond)
		})
	}
}

func TestHang(t *testing.T) {
	if os.Getenv("FAKE_HANG") == "1" {
		select {}
	}
}

func TestAfterHang(t *testing.T) {}

func TestEnvSeen(t *testing.T) {
	if os.Getenv("FAKE_RUN") == "" {
		t.Fatal("FAKE_RUN is not set: the run's environment did not reach the test")
	}
}
