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

// TestServe: a request is answered; cancelling ctx returns nil after a
// graceful shutdown; a listener that fails returns its error, named.
func TestServe(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "hello") })
	go func() { served <- Serve(ctx, "test", ln, h, time.Second) }()
	resp, err := http.Get("http://" + ln.Addr().String() + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "hello" {
		t.Errorf("body %q, want hello", body)
	}
	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("after cancel: %v, want nil", err)
		}
	case <-time.After(ShutdownTimeout + 5*time.Second):
		t.Fatal("Serve did not return after cancel")
	}

	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed.Close()
	err = Serve(context.Background(), "test", closed, h, time.Second)
	if err == nil || !strings.HasPrefix(err.Error(), "test: serve on ") {
		t.Errorf("on a closed listener: %v, want a \"test: serve on …\" error", err)
	}
}
