package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// ReadyTimeout bounds one readiness check: /readyz answers 503 if the ready
// function has not returned by then.
const ReadyTimeout = 5 * time.Second

// Handler serves:
//
//   - GET /metrics: the series gathered from g, in the Prometheus text (or
//     negotiated OpenMetrics) format;
//   - GET /healthz: 200 "ok" whenever the process can answer HTTP (liveness);
//   - GET /readyz: 200 "ok" when ready(ctx) returns nil within ReadyTimeout,
//     else 503 with the error text. ready should check that the tailnet is up
//     and that each backend accepts the admin login, and should honour ctx.
//     A nil ready means always ready.
//
// The /readyz body includes ready's error text, so the endpoint should be
// reachable only by operators (the default listen address is loopback).
func Handler(g prometheus.Gatherer, ready func(ctx context.Context) error) http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(g, promhttp.HandlerOpts{
		MaxRequestsInFlight: 4,
		Timeout:             ReadyTimeout,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		if err := checkReady(r.Context(), ready); err != nil {
			writeText(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
		writeText(w, http.StatusOK, "ok")
	})
	return mux
}

// checkReady runs ready under ReadyTimeout. It returns when ready does or
// when the timeout expires, whichever is first, so a ready function that
// ignores its context cannot hang the request (its goroutine finishes on its
// own).
func checkReady(ctx context.Context, ready func(context.Context) error) error {
	if ready == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, ReadyTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- ready(ctx) }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("readiness check: %w", context.Cause(ctx))
	}
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	fmt.Fprintln(w, body)
}

// Server timeouts. Writes get more time than one readiness check or one
// gather so that a slow check still produces its 503.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = ReadyTimeout + 10*time.Second
	idleTimeout       = 60 * time.Second
	maxHeaderBytes    = 16 << 10
	shutdownTimeout   = 5 * time.Second
)

// Serve listens on addr (host:port) and serves h until ctx is done; see
// ServeListener.
func Serve(ctx context.Context, addr string, h http.Handler) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	return ServeListener(ctx, ln, h)
}

// ServeListener serves h on ln, with bounded header, read, write and idle
// timeouts, until ctx is done; then it shuts the server down gracefully,
// giving in-flight requests up to 5 s, and returns nil (or the error of a
// shutdown that had to be forced). If serving fails before ctx is done, it
// returns that error. ServeListener closes ln.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler) error {
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
		return fmt.Errorf("metrics: serve on %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	return shutdown(srv, served)
}

// shutdown stops srv gracefully within shutdownTimeout, then forcibly, and
// waits for Serve to return.
func shutdown(srv *http.Server, served <-chan error) error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := srv.Shutdown(ctx)
	if err != nil {
		err = errors.Join(fmt.Errorf("metrics: graceful shutdown: %w", err), srv.Close())
	}
	if serveErr := <-served; serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		err = errors.Join(err, fmt.Errorf("metrics: serve: %w", serveErr))
	}
	return err
}
