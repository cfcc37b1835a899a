package relay

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"testing"
	"time"
)

// liveness bounds every wait in these tests; it is never a performance threshold.
const liveness = 10 * time.Second

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b := <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a.(*net.TCPConn), b.(*net.TCPConn)
}

// rig is a relay between a client app and a server app:
// clientApp <-> clientSide [Run] serverSide <-> serverApp.
type rig struct {
	clientApp, clientSide, serverSide, serverApp *net.TCPConn
	done                                         chan Result
}

func startRig(t *testing.T, ctx context.Context, opts Options) *rig {
	t.Helper()
	r := &rig{done: make(chan Result, 1)}
	r.clientApp, r.clientSide = tcpPair(t)
	r.serverSide, r.serverApp = tcpPair(t)
	go func() { r.done <- Run(ctx, r.clientSide, r.serverSide, opts) }()
	return r
}

func (r *rig) wait(t *testing.T) Result {
	t.Helper()
	select {
	case res := <-r.done:
		return res
	case <-time.After(liveness):
		t.Fatal("Run did not return")
		return Result{}
	}
}

// readAll reads c to EOF within the liveness deadline.
func readAll(t *testing.T, c net.Conn) []byte {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(liveness))
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return b
}

func TestRun_HalfCloseBothOrders(t *testing.T) {
	tests := []struct {
		name        string
		clientFirst bool
		bufferSize  int
		wantReason  Reason
	}{
		{name: "client closes first", clientFirst: true, wantReason: ClientClosed},
		{name: "server closes first", clientFirst: false, wantReason: ServerClosed},
		{name: "tiny buffer", clientFirst: true, bufferSize: 3, wantReason: ClientClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startRig(t, context.Background(), Options{BufferSize: tt.bufferSize})
			up := bytes.Repeat([]byte("query "), 1000)
			down := bytes.Repeat([]byte("rows "), 3000)
			first, firstPeer, firstData := r.clientApp, r.serverApp, up
			second, secondPeer, secondData := r.serverApp, r.clientApp, down
			if !tt.clientFirst {
				first, firstPeer, firstData = r.serverApp, r.clientApp, down
				second, secondPeer, secondData = r.clientApp, r.serverApp, up
			}
			if _, err := first.Write(firstData); err != nil {
				t.Fatal(err)
			}
			if err := first.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, firstPeer); !bytes.Equal(got, firstData) {
				t.Fatalf("first direction: got %d bytes, want %d", len(got), len(firstData))
			}
			// The other direction still works after the half-close.
			if _, err := second.Write(secondData); err != nil {
				t.Fatal(err)
			}
			if err := second.CloseWrite(); err != nil {
				t.Fatal(err)
			}
			if got := readAll(t, secondPeer); !bytes.Equal(got, secondData) {
				t.Fatalf("second direction: got %d bytes, want %d", len(got), len(secondData))
			}
			res := r.wait(t)
			if res.Reason != tt.wantReason || res.Err != nil {
				t.Errorf("got reason %v err %v, want %v and no error", res.Reason, res.Err, tt.wantReason)
			}
			if res.ClientToServer != int64(len(up)) || res.ServerToClient != int64(len(down)) {
				t.Errorf("got counts %d/%d, want %d/%d", res.ClientToServer, res.ServerToClient, len(up), len(down))
			}
		})
	}
}

func TestRun_CountersLive(t *testing.T) {
	var counters Counters
	ctx, cancel := context.WithCancel(context.Background())
	r := startRig(t, ctx, Options{Counters: &counters})
	if _, err := r.clientApp.Write([]byte("0123456789")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 10)
	_ = r.serverApp.SetReadDeadline(time.Now().Add(liveness))
	if _, err := io.ReadFull(r.serverApp, buf); err != nil {
		t.Fatal(err)
	}
	// The copier counts a chunk once its write returned, which may be just
	// after the reader saw the bytes: wait for it, within liveness.
	deadline := time.Now().Add(liveness)
	for counters.ClientToServer() != 10 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if got := counters.ClientToServer(); got != 10 {
		t.Errorf("while running: got ClientToServer %d, want 10", got)
	}
	if got := counters.ServerToClient(); got != 0 {
		t.Errorf("while running: got ServerToClient %d, want 0", got)
	}
	cancel()
	if res := r.wait(t); res.ClientToServer != 10 {
		t.Errorf("result: got ClientToServer %d, want 10", res.ClientToServer)
	}
}

func TestRun_ContextStopLeavesConnsOpen(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	r := startRig(t, ctx, Options{})
	cancel()
	res := r.wait(t)
	if res.Reason != Stopped {
		t.Fatalf("got reason %v (err %v), want %v", res.Reason, res.Err, Stopped)
	}
	// Run closed nothing: after a fresh deadline the caller can still write,
	// e.g. a FATAL ErrorResponse.
	if err := r.clientSide.SetDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.clientSide.Write([]byte("bye")); err != nil {
		t.Fatalf("write after stop: %v", err)
	}
	buf := make([]byte, 3)
	_ = r.clientApp.SetReadDeadline(time.Now().Add(liveness))
	if _, err := io.ReadFull(r.clientApp, buf); err != nil || string(buf) != "bye" {
		t.Fatalf("got %q, %v; want \"bye\"", buf, err)
	}
}

func TestRun_MaxBytes(t *testing.T) {
	tests := []struct {
		name     string
		max      int64
		send     int
		wantSent int64
	}{
		{name: "over the limit", max: 10, send: 25, wantSent: 10},
		{name: "exactly the limit", max: 10, send: 10, wantSent: 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startRig(t, context.Background(), Options{MaxBytes: tt.max})
			if _, err := r.clientApp.Write(bytes.Repeat([]byte("x"), tt.send)); err != nil {
				t.Fatal(err)
			}
			res := r.wait(t)
			if res.Reason != ByteLimit {
				t.Errorf("got reason %v (err %v), want %v", res.Reason, res.Err, ByteLimit)
			}
			if res.ClientToServer != tt.wantSent {
				t.Errorf("got ClientToServer %d, want %d", res.ClientToServer, tt.wantSent)
			}
			r.serverSide.Close() // the caller's job after Run
			if got := readAll(t, r.serverApp); int64(len(got)) != tt.wantSent {
				t.Errorf("server received %d bytes, want %d", len(got), tt.wantSent)
			}
		})
	}
}

// TestRun_BudgetChangedWhileRunning: a cap set, lowered or raised while the
// relay runs applies from the next read; bytes already forwarded count
// against it, also those forwarded while it was unlimited.
func TestRun_BudgetChangedWhileRunning(t *testing.T) {
	tests := []struct {
		name     string
		initial  int64 // the cap when Run starts
		changed  int64 // the cap after the first 10 bytes went through
		second   int   // bytes sent after the change
		wantSent int64 // client→server bytes forwarded in all
		wantStop bool  // whether the relay ends with ByteLimit
	}{
		{name: "unlimited, then capped below what went through", initial: 0, changed: 5, second: 1, wantSent: 10, wantStop: true},
		{name: "lowered to what went through", initial: 100, changed: 10, second: 3, wantSent: 10, wantStop: true},
		{name: "lowered above what went through", initial: 100, changed: 15, second: 20, wantSent: 15, wantStop: true},
		{name: "raised", initial: 12, changed: 100, second: 20, wantSent: 30},
		{name: "removed", initial: 12, changed: 0, second: 20, wantSent: 30},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			budget := NewBudget(tt.initial)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			r := startRig(t, ctx, Options{Budget: budget})
			if _, err := r.clientApp.Write(bytes.Repeat([]byte("a"), 10)); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 10)
			_ = r.serverApp.SetReadDeadline(time.Now().Add(liveness))
			if _, err := io.ReadFull(r.serverApp, buf); err != nil {
				t.Fatal(err)
			}
			budget.Set(tt.changed)
			if _, err := r.clientApp.Write(bytes.Repeat([]byte("b"), tt.second)); err != nil {
				t.Fatal(err)
			}
			if !tt.wantStop {
				rest := make([]byte, tt.second)
				if _, err := io.ReadFull(r.serverApp, rest); err != nil {
					t.Fatalf("after the change: %v", err)
				}
				cancel()
			}
			res := r.wait(t)
			if got := res.Reason == ByteLimit; got != tt.wantStop {
				t.Errorf("got reason %v, want ByteLimit: %v", res.Reason, tt.wantStop)
			}
			if res.ClientToServer != tt.wantSent {
				t.Errorf("got ClientToServer %d, want %d", res.ClientToServer, tt.wantSent)
			}
		})
	}
}

func TestRun_NoHalfCloseStopsBoth(t *testing.T) {
	clientApp, clientSide := net.Pipe()
	serverSide, serverApp := net.Pipe()
	defer clientApp.Close()
	defer serverApp.Close()
	done := make(chan Result, 1)
	go func() { done <- Run(context.Background(), clientSide, serverSide, Options{}) }()
	clientApp.Close() // net.Pipe cannot half-close, so Run must stop both directions
	select {
	case res := <-done:
		if res.Reason != ClientClosed {
			t.Errorf("got reason %v (err %v), want %v", res.Reason, res.Err, ClientClosed)
		}
	case <-time.After(liveness):
		t.Fatal("Run did not return")
	}
}

func TestRun_IOErrorIsReported(t *testing.T) {
	r := startRig(t, context.Background(), Options{})
	r.serverSide.Close() // breaks the relay's own end: reads and writes fail
	res := r.wait(t)
	if res.Reason != Error || !errors.Is(res.Err, net.ErrClosed) {
		t.Errorf("got reason %v err %v, want %v wrapping net.ErrClosed", res.Reason, res.Err, Error)
	}
}

func TestReason_String(t *testing.T) {
	for r, want := range map[Reason]string{
		ClientClosed: "client_closed", ServerClosed: "server_closed", Stopped: "stopped",
		ByteLimit: "byte_limit", Error: "error", 0: "unknown",
	} {
		if got := r.String(); got != want {
			t.Errorf("Reason(%d).String(): got %q, want %q", int(r), got, want)
		}
	}
}
