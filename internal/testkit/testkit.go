// Package testkit holds the small helpers that tests across Waypoint share:
// a buffer safe for concurrent writers, loopback servers that run a handler
// per connection, and self-signed certificates. Standard library only, so
// that any package's tests may import it; nothing outside tests does.
package testkit

import (
	"bytes"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is a bytes.Buffer safe for concurrent use, e.g. a log written by
// a server goroutine and read by the test. The zero value is empty and ready.
type SyncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

// Write appends p to the buffer.
func (b *SyncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// String returns everything written so far.
func (b *SyncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// Serve accepts connections on ln until it is closed and runs handle on
// each in its own goroutine, closing the connection when handle returns.
// The test's cleanup closes ln. Serve returns stop, which closes ln and
// waits until every handler has returned, for a test that reads what the
// handlers recorded; it may be called more than once.
func Serve(tb testing.TB, ln net.Listener, handle func(net.Conn)) (stop func()) {
	tb.Cleanup(func() { ln.Close() })
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Go(func() {
				defer c.Close()
				handle(c)
			})
		}
	})
	return func() {
		ln.Close()
		wg.Wait()
	}
}

// ServeLoopback is Serve on a new listener on a free port of 127.0.0.1, and
// returns its address.
func ServeLoopback(tb testing.TB, handle func(net.Conn)) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	Serve(tb, ln, handle)
	return ln.Addr().String()
}

// WaitFor polls cond every 20ms until it holds, failing tb with what was
// awaited when it still does not after timeout. The timeout bounds a hang;
// it is not a performance claim, so make it generous.
func WaitFor(tb testing.TB, timeout time.Duration, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("still waiting after %v for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// StateDir returns a new temporary directory for a tsnet node's state,
// removed at tb's cleanup. Unlike tb.TempDir, the removal is retried for a
// few seconds while the directory is still being written to: tsnet's
// background goroutines may write a last file just after Close returns,
// which makes a single RemoveAll fail with "directory not empty". The
// cleanup must be registered before the node's Close, so that it runs
// after it.
func StateDir(tb testing.TB) string {
	tb.Helper()
	dir, err := os.MkdirTemp("", "tsnet-state-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		var err error
		for range 50 {
			if err = os.RemoveAll(dir); err == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		tb.Errorf("remove %s: %v", dir, err)
	})
	return dir
}

// InCI reports whether the environment says this is a CI run (CI set to a
// true value, as strconv.ParseBool reads it).
func InCI() bool {
	ci, _ := strconv.ParseBool(os.Getenv("CI"))
	return ci
}

// SkipUnlessCI ends the test for a missing prerequisite (why): a skip on a
// developer's machine, a failure under CI=true, where every prerequisite
// must be installed.
func SkipUnlessCI(tb testing.TB, why any) {
	tb.Helper()
	if InCI() {
		tb.Fatalf("%v (CI=true: install it first, e.g. scripts/install-postgres.sh)", why)
	}
	tb.Skip(why)
}
