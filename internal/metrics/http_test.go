package metrics

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// liveness bounds waits in tests; it is never a performance threshold.
const liveness = 10 * time.Second

func TestHandler(t *testing.T) {
	notReady := func(context.Context) error { return errors.New("tailnet is not up") }
	ready := func(context.Context) error { return nil }
	tests := []struct {
		name     string
		ready    func(context.Context) error
		method   string
		path     string
		wantCode int
		wantBody []string
	}{
		{"healthz", notReady, "GET", "/healthz", 200, []string{"ok"}},
		{"readyz ready", ready, "GET", "/readyz", 200, []string{"ok"}},
		{"readyz nil ready func", nil, "GET", "/readyz", 200, []string{"ok"}},
		{"readyz not ready", notReady, "GET", "/readyz", 503, []string{"tailnet is not up"}},
		{"metrics", ready, "GET", "/metrics", 200, []string{
			`waypoint_connections_total{listener="pg",outcome="ok"} 1`,
			`waypoint_refused_total{listener="pg",reason="no_grant"} 1`,
			`waypoint_sessions_active{listener="pg"} 0`,
			"go_goroutines",
		}},
		{"HEAD healthz", ready, "HEAD", "/healthz", 200, nil},
		{"POST refused", ready, "POST", "/healthz", 405, nil},
		{"unknown path", ready, "GET", "/debug/pprof/", 404, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := NewRegistry()
			m := New(reg)
			m.ConnOpened("pg")
			m.Refused("pg", "no_grant")
			m.ConnClosed("pg", "ok", 10, 20, time.Second)
			rec := httptest.NewRecorder()
			Handler(reg, tt.ready).ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
			if rec.Code != tt.wantCode {
				t.Errorf("got status %d, want %d (body %q)", rec.Code, tt.wantCode, rec.Body.String())
			}
			for _, want := range tt.wantBody {
				if !strings.Contains(rec.Body.String(), want) {
					t.Errorf("got body %q, want it to contain %q", rec.Body.String(), want)
				}
			}
		})
	}
}

// TestHandler_ReadyzDeadline checks that /readyz hands ready a context with
// a deadline and answers 503 when ready fails because of it.
func TestHandler_ReadyzDeadline(t *testing.T) {
	var hadDeadline bool
	ready := func(ctx context.Context) error {
		_, hadDeadline = ctx.Deadline()
		return context.DeadlineExceeded
	}
	rec := httptest.NewRecorder()
	Handler(prometheus.NewRegistry(), ready).ServeHTTP(rec, httptest.NewRequest("GET", "/readyz", nil))
	if !hadDeadline {
		t.Error("got a context without deadline, want one bounded by ReadyTimeout")
	}
	if rec.Code != http.StatusServiceUnavailable {
		t.Errorf("got status %d, want 503", rec.Code)
	}
}

// TestCheckReady_IgnoredContext checks that a ready function that ignores
// its context cannot hang /readyz: the check returns when its own context
// ends.
func TestCheckReady_IgnoredContext(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	stuck := func(context.Context) error { <-release; return nil }
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan error, 1)
	go func() { done <- checkReady(ctx, stuck) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("got %v, want context.Canceled", err)
		}
	case <-time.After(liveness):
		t.Fatal("checkReady hung on a ready func that ignores its context")
	}
}

// TestServeListener serves real HTTP on loopback, then checks that
// cancelling the context shuts the server down and returns nil.
func TestServeListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- ServeListener(ctx, ln, Handler(NewRegistry(), nil)) }()

	resp, err := http.Get("http://" + ln.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != "ok" {
		t.Errorf("got %d %q, want 200 \"ok\"", resp.StatusCode, body)
	}

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("got %v, want nil after cancel", err)
		}
	case <-time.After(liveness):
		t.Fatal("ServeListener did not return after cancel")
	}
	if _, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		t.Error("got a connection after shutdown, want the listener closed")
	}
}
