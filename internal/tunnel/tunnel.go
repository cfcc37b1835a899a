// Package tunnel forwards local TCP connections to one fixed target reached
// through a dialer. `waypoint tunnel` and `waypoint demo` use it to expose a
// Waypoint listener on the tailnet as a port on 127.0.0.1, for clients on a
// machine without tailscaled: the dialer is a tsnet node's, so the Waypoint
// listener sees the tunnel's node as the caller.
//
// It knows nothing about Tailscale or PostgreSQL; it imports only the
// standard library, internal/acceptloop and internal/relay.
package tunnel

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/acceptloop"
	"github.com/waypoint-proxy/waypoint/internal/relay"
)

// DefaultDialTimeout bounds dialing the target when Options.DialTimeout is
// zero.
const DefaultDialTimeout = 15 * time.Second

// DialFunc connects to addr, like net.Dialer.DialContext; it must respect
// ctx's deadline.
type DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)

// Options configures Serve. Target and Dial are required.
type Options struct {
	// Target is the "host:port" every connection is forwarded to, e.g.
	// "waypoint-db:5432" (a MagicDNS name when Dial is a tailnet node's).
	Target string
	// Dial connects to Target for each accepted connection.
	Dial DialFunc
	// DialTimeout bounds each dial; zero means DefaultDialTimeout. A
	// connection whose dial fails or times out is closed.
	DialTimeout time.Duration
	// Logger receives one line per connection when it ends (client address,
	// target, bytes each way, duration, why it ended) and Accept errors. Nil
	// means no logs.
	Logger *slog.Logger
}

// Serve accepts connections on ln and forwards each to opts.Target until ctx
// is done or ln fails permanently. Each connection is relayed both ways with
// half-close: when one side finishes sending, the other side's write
// direction is closed and the rest of the other direction still flows.
//
// Serve owns ln and closes it before returning; it also closes every open
// connection when ctx is done, and returns only after all of them have
// ended. It returns nil when ctx ended it, else the Accept error.
func Serve(ctx context.Context, ln net.Listener, opts Options) error {
	if opts.Target == "" || opts.Dial == nil {
		ln.Close()
		return errors.New("tunnel: Target and Dial are required")
	}
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = DefaultDialTimeout
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	defer ln.Close()

	var wg sync.WaitGroup
	defer wg.Wait()
	err := acceptloop.Run(ctx, ln, func(conn net.Conn) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			forward(ctx, conn, opts)
		}()
	}, acceptloop.Options{OnRetry: func(err error, backoff time.Duration) {
		opts.Logger.Warn("tunnel: accept failed; retrying", "err", err, "backoff", backoff)
	}})
	if err != nil {
		return fmt.Errorf("tunnel: accept: %w", err)
	}
	return nil
}

// forward dials the target for conn, relays until both directions end (or
// ctx is done), closes both connections and logs the outcome.
func forward(ctx context.Context, conn net.Conn, opts Options) {
	defer conn.Close()
	began := time.Now()
	log := opts.Logger.With("client", conn.RemoteAddr().String(), "target", opts.Target)
	dctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	upstream, err := opts.Dial(dctx, "tcp", opts.Target)
	cancel()
	if err != nil {
		log.Warn("tunnel connection failed", "err", err, "duration", time.Since(began).Round(time.Millisecond))
		return
	}
	defer upstream.Close()
	res := relay.Run(ctx, conn, upstream, relay.Options{})
	attrs := []any{
		"bytes_sent", res.ClientToServer, "bytes_received", res.ServerToClient,
		"duration", time.Since(began).Round(time.Millisecond), "end", res.Reason.String(),
	}
	if res.Err != nil {
		attrs = append(attrs, "err", res.Err)
	}
	log.Info("tunnel connection", attrs...)
}
