package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

// liveness bounds every wait in these tests; it is a deadline, not a
// performance threshold.
const liveness = 30 * time.Second

// countingServer accepts connections on a loopback port; for each it reads
// until EOF and then answers "got N" and closes: it only answers after the
// tunnel has passed on the client's half-close.
func countingServer(t *testing.T) string {
	t.Helper()
	return testkit.ServeLoopback(t, func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		fmt.Fprintf(c, "got %d", n)
	})
}

// serve runs Serve on a loopback port in the background and returns the
// port's address, a cancel func and a func waiting for Serve's result.
func serve(t *testing.T, opts Options) (addr string, cancel context.CancelFunc, wait func() error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ch := make(chan error, 1)
	go func() { ch <- Serve(ctx, ln, opts) }()
	wait = sync.OnceValue(func() error {
		select {
		case err := <-ch:
			return err
		case <-time.After(liveness):
			return errors.New("Serve did not return after cancel")
		}
	})
	t.Cleanup(func() {
		cancel()
		wait()
	})
	return ln.Addr().String(), cancel, wait
}

func dial(t *testing.T, addr string) *net.TCPConn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(liveness))
	return c.(*net.TCPConn)
}

func TestServe_ForwardsWithHalfClose(t *testing.T) {
	target := countingServer(t)
	var logs testkit.SyncBuffer
	var d net.Dialer
	addr, _, _ := serve(t, Options{Target: target, Dial: d.DialContext, Logger: slog.New(slog.NewTextHandler(&logs, nil))})

	c := dial(t, addr)
	if _, err := io.WriteString(c, "hello"); err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "got 5" {
		t.Fatalf("reply: got %q, %v; want %q (the answer comes only after the half-close went through)", got, err, "got 5")
	}
	c.Close()
	testkit.WaitFor(t, liveness, "the tunnel connection to be logged", func() bool { return strings.Contains(logs.String(), "tunnel connection") })
	if log := logs.String(); !strings.Contains(log, "bytes_sent=5") || !strings.Contains(log, "bytes_received=5") || !strings.Contains(log, "target="+target) {
		t.Errorf("log: got %q, want one line with target, bytes_sent=5 and bytes_received=5", log)
	}
}

func TestServe_DialFailures(t *testing.T) {
	tests := []struct {
		name string
		dial DialFunc
	}{
		{"refused", func(ctx context.Context, network, addr string) (net.Conn, error) {
			return nil, errors.New("connection refused")
		}},
		{"timeout", func(ctx context.Context, network, addr string) (net.Conn, error) {
			<-ctx.Done() // a target that never answers: only DialTimeout ends it
			return nil, ctx.Err()
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var logs testkit.SyncBuffer
			addr, _, _ := serve(t, Options{
				Target: "waypoint-db:5432", Dial: tt.dial, DialTimeout: 20 * time.Millisecond,
				Logger: slog.New(slog.NewTextHandler(&logs, nil)),
			})
			c := dial(t, addr)
			if got, err := io.ReadAll(c); err != nil || len(got) != 0 {
				t.Errorf("read: got %q, %v; want EOF with no data", got, err)
			}
			testkit.WaitFor(t, liveness, "the failed tunnel connection to be logged", func() bool { return strings.Contains(logs.String(), "tunnel connection failed") })
		})
	}
}

func TestServe_CancelClosesOpenConnections(t *testing.T) {
	target := countingServer(t)
	var d net.Dialer
	addr, cancel, wait := serve(t, Options{Target: target, Dial: d.DialContext})
	c := dial(t, addr)
	io.WriteString(c, "x") // the relay is running; the target waits for EOF
	cancel()
	if err := wait(); err != nil {
		t.Errorf("Serve: got %v, want nil after cancel", err)
	}
	// The connection ends: EOF, or a reset when "x" was still unread.
	if got, err := io.ReadAll(c); len(got) != 0 || (err != nil && !errors.Is(err, syscall.ECONNRESET)) {
		t.Errorf("read after cancel: got %q, %v; want the connection closed", got, err)
	}
	if _, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
		t.Errorf("dial after Serve returned: got nil error, want connection refused")
	}
}

func TestServe_RequiresTargetAndDial(t *testing.T) {
	var d net.Dialer
	tests := []struct {
		name string
		opts Options
	}{
		{"no target", Options{Dial: d.DialContext}},
		{"no dial", Options{Target: "waypoint-db:5432"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			if err := Serve(context.Background(), ln, tt.opts); err == nil {
				t.Errorf("Serve: got nil error, want one")
			}
			if _, err := ln.Accept(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("listener after Serve: got %v, want it closed", err)
			}
		})
	}
}

// flakyListener fails its first Accept with EMFILE (out of file
// descriptors: temporary), then behaves as the listener it wraps.
type flakyListener struct {
	net.Listener
	failed bool
}

func (l *flakyListener) Accept() (net.Conn, error) {
	if !l.failed {
		l.failed = true
		return nil, &net.OpError{Op: "accept", Net: "tcp", Err: syscall.EMFILE}
	}
	return l.Listener.Accept()
}

// TestServe_RetriesTemporaryAcceptErrors: a temporary Accept error is
// logged and retried; connections accepted afterwards are forwarded.
func TestServe_RetriesTemporaryAcceptErrors(t *testing.T) {
	target := countingServer(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs testkit.SyncBuffer
	var d net.Dialer
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Serve(ctx, &flakyListener{Listener: ln}, Options{Target: target, Dial: d.DialContext, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	}()
	c := dial(t, ln.Addr().String())
	if err := c.CloseWrite(); err != nil {
		t.Fatalf("CloseWrite: %v", err)
	}
	if got, err := io.ReadAll(c); err != nil || string(got) != "got 0" {
		t.Errorf("reply: got %q, %v; want %q", got, err, "got 0")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Serve: got %v, want nil after cancel", err)
		}
	case <-time.After(liveness):
		t.Fatal("Serve did not return after cancel")
	}
	if log := logs.String(); !strings.Contains(log, "accept failed; retrying") {
		t.Errorf("log: got %q, want the retried Accept error", log)
	}
}
