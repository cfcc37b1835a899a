package httpserve

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// liveness bounds waits; it is never a performance threshold.
const liveness = 10 * time.Second

// start serves h on a loopback port and returns the address, the cancel
// func and the channel Serve's result arrives on.
func start(t *testing.T, h http.Handler) (string, context.CancelFunc, <-chan error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	served := make(chan error, 1)
	go func() { served <- Serve(ctx, ln, h, Options{Name: "test", WriteTimeout: liveness}) }()
	return ln.Addr().String(), cancel, served
}

func wait(t *testing.T, served <-chan error) error {
	t.Helper()
	select {
	case err := <-served:
		return err
	case <-time.After(liveness):
		t.Fatal("Serve did not return")
		return nil
	}
}

func TestServe_CancelShutsDown(t *testing.T) {
	addr, cancel, served := start(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok")
	}))
	resp, err := http.Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "ok" {
		t.Errorf("got %q, want ok", body)
	}
	cancel()
	if err := wait(t, served); err != nil {
		t.Errorf("got %v, want nil after cancel", err)
	}
	if c, err := net.Dial("tcp", addr); err == nil {
		c.Close()
		t.Error("got a connection after shutdown, want the listener closed")
	}
}

// TestServe_InFlightRequestFinishes checks that ending the context does not
// cancel a request being served: the graceful shutdown waits for it.
func TestServe_InFlightRequestFinishes(t *testing.T) {
	entered, release := make(chan struct{}), make(chan struct{})
	addr, cancel, served := start(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(entered)
		select {
		case <-release:
			io.WriteString(w, "done")
		case <-r.Context().Done():
			io.WriteString(w, "cancelled")
		}
	}))
	got := make(chan string, 1)
	go func() {
		resp, err := http.Get("http://" + addr + "/")
		if err != nil {
			got <- err.Error()
			return
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		got <- string(body)
	}()
	<-entered
	cancel()
	close(release)
	if body := <-got; body != "done" {
		t.Errorf("got %q, want the request to finish with \"done\"", body)
	}
	if err := wait(t, served); err != nil {
		t.Errorf("got %v, want nil", err)
	}
}

func TestServe_ListenerFailure(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	err = Serve(context.Background(), ln, http.NotFoundHandler(), Options{Name: "test", WriteTimeout: liveness})
	if err == nil || !strings.HasPrefix(err.Error(), "test: serve on 127.0.0.1:") {
		t.Errorf("got %v, want a \"test: serve on …\" error", err)
	}
}
