package acceptloop

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"
)

// liveness bounds how long a test waits for Run to react; it is never a
// performance threshold.
const liveness = 10 * time.Second

// accepted is one scripted Accept result.
type accepted struct {
	conn net.Conn
	err  error
}

// fakeListener is a listener whose Accept returns the scripted results in
// order and then blocks until Close, after which it returns net.ErrClosed.
type fakeListener struct {
	script    chan accepted
	closed    chan struct{}
	closeOnce sync.Once
}

func newFakeListener(script ...accepted) *fakeListener {
	l := &fakeListener{script: make(chan accepted, len(script)), closed: make(chan struct{})}
	for _, a := range script {
		l.script <- a
	}
	return l
}

func (l *fakeListener) Accept() (net.Conn, error) {
	select {
	case <-l.closed:
		return nil, net.ErrClosed
	default:
	}
	select {
	case a := <-l.script:
		return a.conn, a.err
	case <-l.closed:
		return nil, net.ErrClosed
	}
}

func (l *fakeListener) Close() error {
	l.closeOnce.Do(func() { close(l.closed) })
	return nil
}

func (l *fakeListener) Addr() net.Addr { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)} }

func (l *fakeListener) isClosed() bool {
	select {
	case <-l.closed:
		return true
	default:
		return false
	}
}

// emfile is the error Accept returns when the process is out of file
// descriptors: temporary.
var emfile = &net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.EMFILE)}

// timeoutErr is an Accept error that is a timeout but does not say it is
// temporary.
type timeoutErr struct{}

func (timeoutErr) Error() string { return "i/o timeout" }
func (timeoutErr) Timeout() bool { return true }

// TestRun_BackoffDoublesCapsAndResets scripts temporary errors around one
// connection and a permanent error: each temporary error waits twice as
// long as the one before, up to MaxBackoff, the accepted connection starts
// the backoff over, and the permanent error ends Run and is returned.
func TestRun_BackoffDoublesCapsAndResets(t *testing.T) {
	conn, peer := net.Pipe()
	defer conn.Close()
	defer peer.Close()
	permanent := errors.New("listener broke")
	ln := newFakeListener(
		accepted{err: emfile}, accepted{err: emfile}, accepted{err: timeoutErr{}}, accepted{err: emfile},
		accepted{conn: conn},
		accepted{err: emfile}, accepted{err: emfile},
		accepted{err: permanent},
	)
	var waits []time.Duration
	var handled []net.Conn
	opts := Options{
		MinBackoff: time.Millisecond,
		MaxBackoff: 4 * time.Millisecond,
		OnRetry:    func(_ error, d time.Duration) { waits = append(waits, d) },
	}
	start := time.Now()
	err := Run(context.Background(), ln, func(c net.Conn) { handled = append(handled, c) }, opts)
	elapsed := time.Since(start)

	if !errors.Is(err, permanent) {
		t.Errorf("Run: got %v, want the permanent error", err)
	}
	ms := time.Millisecond
	if want := []time.Duration{ms, 2 * ms, 4 * ms, 4 * ms, ms, 2 * ms}; !slices.Equal(waits, want) {
		t.Errorf("backoffs: got %v, want %v", waits, want)
	}
	if len(handled) != 1 || handled[0] != conn {
		t.Errorf("handled %v, want exactly the one accepted connection", handled)
	}
	var slept time.Duration
	for _, d := range waits {
		slept += d
	}
	if elapsed < slept {
		t.Errorf("Run returned after %v, less than the %v of backoff it reported: it did not wait", elapsed, slept)
	}
	if ln.isClosed() {
		t.Error("Run closed the listener after a permanent error; its owner closes it")
	}
}

// TestRun_ShutdownEndsBackoff: a context cancelled during a long backoff
// ends Run at once, with nil, and closes the listener.
func TestRun_ShutdownEndsBackoff(t *testing.T) {
	ln := newFakeListener(accepted{err: emfile})
	retrying := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- Run(ctx, ln, func(c net.Conn) { c.Close() }, Options{
			MinBackoff: time.Hour,
			OnRetry:    func(error, time.Duration) { close(retrying) },
		})
	}()
	select {
	case <-retrying:
	case <-time.After(liveness):
		t.Fatal("Run did not report the temporary error")
	}
	cancel()
	wantShutdown(t, done, ln)
}

// TestRun_ShutdownEndsBlockedAccept: cancelling the context closes the
// listener, which ends a blocked Accept, and Run returns nil.
func TestRun_ShutdownEndsBlockedAccept(t *testing.T) {
	tests := []struct {
		name         string
		cancelBefore bool
	}{
		{"cancelled while accepting", false},
		{"cancelled before Run", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ln := newFakeListener()
			ctx, cancel := context.WithCancel(context.Background())
			if tt.cancelBefore {
				cancel()
			}
			done := make(chan error, 1)
			go func() { done <- Run(ctx, ln, func(c net.Conn) { c.Close() }, Options{}) }()
			cancel()
			wantShutdown(t, done, ln)
		})
	}
}

// wantShutdown requires Run, whose context was just cancelled, to return
// nil on done promptly, having closed ln.
func wantShutdown(t *testing.T, done <-chan error, ln *fakeListener) {
	t.Helper()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run: got %v, want nil after shutdown", err)
		}
	case <-time.After(liveness):
		t.Fatal("Run did not return after shutdown")
	}
	if !ln.isClosed() {
		t.Error("listener still open after shutdown")
	}
}

func TestTemporary(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{emfile, true},
		{fmt.Errorf("wrapped: %w", emfile), true},
		{timeoutErr{}, true},
		{&net.OpError{Op: "accept", Net: "tcp", Err: os.NewSyscallError("accept4", syscall.ECONNABORTED)}, false},
		{net.ErrClosed, false},
		{errors.New("boom"), false},
	}
	for _, tt := range tests {
		if got := temporary(tt.err); got != tt.want {
			t.Errorf("temporary(%v): got %v, want %v", tt.err, got, tt.want)
		}
	}
}

func TestOptionsNext(t *testing.T) {
	o := Options{}.withDefaults()
	tests := []struct{ in, want time.Duration }{
		{0, DefaultMinBackoff},
		{DefaultMinBackoff, 2 * DefaultMinBackoff},
		{DefaultMaxBackoff / 2, DefaultMaxBackoff},
		{DefaultMaxBackoff, DefaultMaxBackoff},
	}
	for _, tt := range tests {
		if got := o.next(tt.in); got != tt.want {
			t.Errorf("next(%v): got %v, want %v", tt.in, got, tt.want)
		}
	}
}
