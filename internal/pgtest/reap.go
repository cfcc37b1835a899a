package pgtest

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"
)

// A test binary that dies without cleanup (panic, timeout, kill) leaves its
// servers running. Each cluster directory records the PID of the test
// process that made it; the first cluster start of a later test binary
// stops the servers of dead owners and removes their directories.

const (
	clusterDirPattern = "pgtest-*" // os.MkdirTemp pattern of cluster directories
	ownerFile         = "owner.pid"
)

var reapOnce sync.Once

// writeOwner records this process as the owner of the cluster directory.
func writeOwner(dir string) error {
	return os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())), 0o644)
}

// reapOrphans stops and removes clusters whose owning test process is
// gone. It is best effort and runs once per test binary.
func reapOrphans() {
	reapOnce.Do(func() {
		dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), clusterDirPattern))
		for _, dir := range dirs {
			if orphaned(dir) {
				reap(dir)
			}
		}
	})
}

// orphaned reports whether dir is a cluster directory whose owner is dead.
func orphaned(dir string) bool {
	b, err := os.ReadFile(filepath.Join(dir, ownerFile))
	if err != nil {
		return false // not ours, or being created right now
	}
	pid, err := strconv.Atoi(string(bytes.TrimSpace(b)))
	if err != nil || pid <= 0 {
		return false
	}
	return !alive(pid)
}

// alive reports whether a process with pid exists.
func alive(pid int) bool {
	_, err := os.Stat("/proc/" + strconv.Itoa(pid))
	return err == nil
}

// reap stops dir's postmaster (SIGQUIT: immediate shutdown) if it still
// runs, then removes dir.
func reap(dir string) {
	b, err := os.ReadFile(filepath.Join(dir, "data", "postmaster.pid"))
	if err == nil {
		first, _, _ := bytes.Cut(b, []byte("\n"))
		if pid, err := strconv.Atoi(string(bytes.TrimSpace(first))); err == nil && isPostgres(pid) {
			syscall.Kill(pid, syscall.SIGQUIT)
			for deadline := time.Now().Add(10 * time.Second); alive(pid) && time.Now().Before(deadline); {
				time.Sleep(50 * time.Millisecond)
			}
			if alive(pid) {
				return // leave it; better a leak than removing a running server's files
			}
		}
	}
	os.RemoveAll(dir)
}

// isPostgres reports whether pid is a postgres process (not a reused PID).
func isPostgres(pid int) bool {
	comm, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/comm")
	return err == nil && string(bytes.TrimSpace(comm)) == "postgres"
}
