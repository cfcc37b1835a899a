// Package acceptloop is the accept loop Waypoint's servers share (the proxy
// listener and the local tunnel): it hands each accepted connection to a
// handler, backs off on temporary Accept errors instead of spinning, and
// stops as soon as its context is done, even in the middle of a backoff.
//
// It imports only the standard library.
package acceptloop

import (
	"context"
	"errors"
	"net"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/ctxtime"
)

// Default backoff bounds for temporary Accept errors (e.g. too many open
// files).
const (
	DefaultMinBackoff = 5 * time.Millisecond
	DefaultMaxBackoff = time.Second
)

// Options configure Run. The zero value is ready to use.
type Options struct {
	// MinBackoff is the wait after the first of consecutive temporary
	// Accept errors; each further one doubles it. Zero means
	// DefaultMinBackoff.
	MinBackoff time.Duration
	// MaxBackoff caps the wait. Zero means DefaultMaxBackoff.
	MaxBackoff time.Duration
	// OnRetry, when set, is called on Run's goroutine with each temporary
	// error and the wait before the next Accept (for a log line). Nil means
	// none.
	OnRetry func(err error, backoff time.Duration)
}

// Run accepts connections on ln and passes each to handle until ctx is done
// or Accept fails with an error that is not temporary. handle runs on Run's
// goroutine, so it must not block: it owns conn and serves it on a
// goroutine of its own.
//
// A temporary error (one whose Temporary or Timeout method reports true,
// such as EMFILE) is retried after a backoff that doubles from MinBackoff up
// to MaxBackoff and starts over after a successful Accept; ctx ends the wait
// early.
//
// When ctx is done Run closes ln, so that a blocked Accept returns, and
// returns nil; ln is closed by then. Otherwise it returns the Accept error unwrapped and leaves ln
// to its owner, the caller.
func Run(ctx context.Context, ln net.Listener, handle func(net.Conn), opts Options) error {
	opts = opts.withDefaults()
	stop := context.AfterFunc(ctx, func() { ln.Close() })
	defer stop()
	// AfterFunc closes ln on a goroutine of its own: close it here too, so
	// that it is closed when Run returns.
	shutdown := func() error { ln.Close(); return nil }
	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return shutdown()
			}
			if !temporary(err) {
				return err
			}
			backoff = opts.next(backoff)
			if opts.OnRetry != nil {
				opts.OnRetry(err, backoff)
			}
			if ctxtime.Sleep(ctx, backoff) != nil {
				return shutdown()
			}
			continue
		}
		backoff = 0
		handle(conn)
	}
}

// temporary reports whether an Accept error may go away by itself: it has
// a Temporary or a Timeout method that says so.
func temporary(err error) bool {
	var t interface{ Temporary() bool }
	if errors.As(err, &t) && t.Temporary() {
		return true
	}
	var to interface{ Timeout() bool }
	return errors.As(err, &to) && to.Timeout()
}

func (o Options) withDefaults() Options {
	if o.MinBackoff <= 0 {
		o.MinBackoff = DefaultMinBackoff
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = DefaultMaxBackoff
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	return o
}

// next doubles d within [MinBackoff, MaxBackoff].
func (o Options) next(d time.Duration) time.Duration {
	return min(max(2*d, o.MinBackoff), o.MaxBackoff)
}
