package tailnettest

import (
	"context"
	"net"
	"testing"

	"github.com/waypoint-proxy/waypoint/internal/tunnel"
)

// Forward runs `waypoint tunnel`'s code (tunnel.Serve with opts) on a new
// 127.0.0.1 port until the test ends, and returns the port's address: each
// connection to it is forwarded to opts.Target with opts.Dial, typically a
// Client's Dial, so that libpq tools (psql, pgbench) reach a tailnet
// listener. Goroutines it starts inherit the caller's pprof labels.
func Forward(tb testing.TB, opts tunnel.Options) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		tunnel.Serve(ctx, ln, opts)
	}()
	tb.Cleanup(func() { cancel(); <-done })
	return ln.Addr().String()
}
