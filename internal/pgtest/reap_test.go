package pgtest

import (
	"errors"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
)

// TestReap_StopsOrphanedCluster checks that a cluster whose owning test
// process died is stopped and removed, and one with a live owner is not.
func TestReap_StopsOrphanedCluster(t *testing.T) {
	t.Parallel()
	// Not Start: its cleanup would run pg_ctl stop on the reaped directory.
	c, err := start(Options{})
	if err != nil {
		skipOrFatal(t, err)
	}
	t.Cleanup(func() {
		if _, err := os.Stat(c.Dir); err == nil { // reap failed: clean up
			if err := c.destroy(); err != nil {
				t.Error(err)
			}
		}
	})
	if orphaned(c.Dir) {
		t.Fatalf("cluster owned by this live process reported orphaned")
	}

	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	owner := strconv.Itoa(dead.ProcessState.Pid())
	if err := os.WriteFile(filepath.Join(c.Dir, ownerFile), []byte(owner), 0o644); err != nil {
		t.Fatal(err)
	}
	if !orphaned(c.Dir) {
		t.Fatalf("cluster owned by exited PID %s not reported orphaned", owner)
	}
	reap(c.Dir)

	if _, err := os.Stat(c.Dir); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("stat %s after reap: got %v, want not exist", c.Dir, err)
	}
	if conn, err := net.DialTimeout("tcp", c.Addr(), 5*time.Second); err == nil {
		conn.Close()
		t.Errorf("%s still accepts connections after reap", c.Addr())
	}
}
