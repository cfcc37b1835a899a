package provision

import (
	"context"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/pgtest"
)

// TestRunCleanup_Timing pins the contract of RunCleanup that
// each listener's cleanup relies on: cleanup_interval = 0 runs no pass and
// returns at once; otherwise the first pass comes one interval after the
// call, not at once, every pass is reported, and cancelling ctx stops it.
func TestRunCleanup_Timing(t *testing.T) {
	prov := newTestProvisioner(t, pgtest.Shared(t, pgtest.Options{}), Options{})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	reports := make(chan time.Duration, 10)
	start := time.Now()
	report := func(CleanupResult, error) { reports <- time.Since(start) }
	prov.RunCleanup(ctx, 0, report) // returns at once, or the test times out
	if len(reports) != 0 {
		t.Fatalf("interval 0 ran %d passes, want none", len(reports))
	}

	const interval = 500 * time.Millisecond
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	start = time.Now()
	go func() {
		defer close(done)
		prov.RunCleanup(runCtx, interval, report)
	}()
	for i := range 2 {
		select {
		case at := <-reports:
			if at < time.Duration(i+1)*interval {
				t.Errorf("pass %d reported %v after the call, want at least %v", i+1, at, time.Duration(i+1)*interval)
			}
		case <-ctx.Done():
			t.Fatalf("pass %d never reported", i+1)
		}
	}
	stop()
	select {
	case <-done:
	case <-ctx.Done():
		t.Fatal("RunCleanup did not return after its context was cancelled")
	}
}
