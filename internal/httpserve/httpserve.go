// Package httpserve runs Waypoint's small HTTP servers (metrics and health,
// the operator console) with bounded timeouts and a graceful shutdown. It
// imports only the standard library.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// Fixed bounds every server gets. Write timeouts differ per server (what
// one response may have to wait for) and are passed in.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	// ShutdownTimeout is how long in-flight requests get once ctx is done.
	ShutdownTimeout = 5 * time.Second
)

// Serve serves h on ln until ctx is done, with bounded header (5 s), read
// (10 s), write (writeTimeout) and idle (60 s) timeouts and 16 KiB of
// headers; then it shuts the server down gracefully, giving in-flight
// requests up to ShutdownTimeout, and returns nil, or the error of a
// shutdown that had to be forced. If serving fails before ctx is done it
// returns that error. name prefixes errors ("metrics", "console"). Serve
// closes ln. Request contexts are not cancelled by ctx: shutdown lets them
// finish.
func Serve(ctx context.Context, name string, ln net.Listener, h http.Handler, writeTimeout time.Duration) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("%s: serve on %s: %w", name, ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("%s: graceful shutdown: %w", name, err), srv.Close())
	}
	if serveErr := <-served; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("%s: serve: %w", name, serveErr))
	}
	return err
}
