package pgwire

import (
	"bytes"
	"context"
	"io"
	"strings"
	"testing"
	"time"
)

// FuzzAccept feeds arbitrary bytes to Accept as everything the client sends.
// Accept must never panic, must return (the input ends in EOF, and a deadline
// bounds it anyway), and on success must return a consistent Client.
func FuzzAccept(f *testing.F) {
	cert := newTestCert(f)
	modes := []FrontOptions{
		{TLSMode: TLSOff},
		{TLSMode: TLSOptional, TLSConfig: cert.server},
		{TLSMode: TLSRequire, TLSConfig: cert.server},
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, opts := range modes {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			done := make(chan struct{})
			var c *Client
			var err error
			go func() {
				defer close(done)
				c, err = Accept(ctx, &memConn{r: bytes.NewReader(data), w: io.Discard}, opts)
			}()
			select {
			case <-done:
			case <-time.After(liveness):
				t.Fatalf("Accept(%s) hung", opts.TLSMode)
			}
			cancel()
			if err == nil {
				checkClient(t, c)
			}
		}
	})
}

// checkClient checks the invariants of a successful Accept.
func checkClient(t *testing.T, c *Client) {
	t.Helper()
	if (c.Params == nil) == (c.Cancel == nil) {
		t.Fatalf("got Params %v and Cancel %v, want exactly one set", c.Params, c.Cancel)
	}
	if c.Cancel != nil {
		return
	}
	if c.Params["user"] == "" || c.Params["database"] == "" {
		t.Errorf("got params %v, want user and database set", c.Params)
	}
	for name := range c.Params {
		if strings.HasPrefix(name, protocolOptionPrefix) {
			t.Errorf("got protocol option %q in Params", name)
		}
	}
}
