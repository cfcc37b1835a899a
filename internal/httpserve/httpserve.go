// Package httpserve serves an HTTP handler on a listener for as long as a
// context lives, with bounded timeouts and a bounded graceful shutdown: the
// one way Waypoint serves its local HTTP faces (metrics, the console).
// Standard library only.
package httpserve

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"
)

// The server's bounds, other than the write timeout, which depends on what
// the handler waits for.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	// ShutdownTimeout is how long in-flight requests may run after the
	// context ends before the server is closed.
	ShutdownTimeout = 5 * time.Second
)

// Options names the server and bounds its responses.
type Options struct {
	// Name starts every error message ("metrics: serve on …").
	Name string
	// WriteTimeout bounds reading a request and writing its response;
	// required, positive.
	WriteTimeout time.Duration
}

// Serve serves h on ln until ctx is done, then shuts the server down
// gracefully, giving in-flight requests up to ShutdownTimeout, and returns
// nil (or the error of a shutdown that had to be forced). If serving fails
// before ctx is done, it returns that error. Requests' contexts are not
// cancelled by ctx ending: the graceful shutdown lets them finish. Serve
// closes ln.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, opts Options) error {
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      opts.WriteTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("%s: serve on %s: %w", opts.Name, ln.Addr(), err)
	case <-ctx.Done():
	}
	return shutdown(srv, served, opts.Name)
}

// shutdown stops srv gracefully within ShutdownTimeout, then forcibly, and
// waits for Serve to return.
func shutdown(srv *http.Server, served <-chan error, name string) error {
	ctx, cancel := context.WithTimeout(context.Background(), ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("%s: graceful shutdown: %w", name, err), srv.Close())
	}
	if serveErr := <-served; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("%s: serve: %w", name, serveErr))
	}
	return err
}
