package metrics

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/waypoint-proxy/waypoint/internal/httpserve"
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

// writeTimeout bounds writing one response: more than one readiness check
// or one gather, so that a slow check still produces its 503.
const writeTimeout = ReadyTimeout + 10*time.Second

// ServeListener serves h on ln until ctx is done, with bounded timeouts and
// a graceful shutdown (httpserve.Serve). It closes ln.
func ServeListener(ctx context.Context, ln net.Listener, h http.Handler) error {
	return httpserve.Serve(ctx, "metrics", ln, h, writeTimeout)
}
