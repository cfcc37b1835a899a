package proxy_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/certs"
	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
)

// failingResolver is a tailnet whose WhoIs always fails with err.
type failingResolver struct{ err error }

func (r failingResolver) WhoIs(context.Context, string) (identity.Peer, error) {
	return identity.Peer{}, r.err
}

// countingProvisioner counts Ensure calls and provisions nothing.
type countingProvisioner struct{ calls atomic.Int32 }

func (p *countingProvisioner) Ensure(context.Context, identity.Peer, authz.Effective) (proxy.Credentials, error) {
	p.calls.Add(1)
	return proxy.Credentials{}, errors.New("countingProvisioner provisions nothing")
}

// unidentifiedServer serves a listener on loopback whose WhoIs fails with
// whoisErr. It returns the address and the provisioner, which must never be
// asked for a role.
func unidentifiedServer(t *testing.T, whoisErr error, mod func(*proxy.Options)) (string, *countingProvisioner) {
	t.Helper()
	prov := &countingProvisioner{}
	opts := proxy.Options{
		Listener:         listenerName,
		Resolver:         failingResolver{err: whoisErr},
		Provisioner:      prov,
		Backend:          proxy.Backend{Addr: "127.0.0.1:1"}, // never dialled
		HandshakeTimeout: 2 * time.Second,
		Logger:           slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if mod != nil {
		mod(&opts)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startServer(t, opts, ln)
	return ln.Addr().String(), prov
}

// TestUnidentifiedCallerIsTold plays a caller the tailnet cannot identify
// (an address WhoIs does not know, a node with neither user nor tags). It
// must get FATAL 28000 saying what to do, over TLS when it asked for TLS,
// instead of a silent close; nothing may be provisioned for it.
func TestUnidentifiedCallerIsTold(t *testing.T) {
	cert, _ := selfSigned(t, "db.example.com")
	tlsRequired := func(o *proxy.Options) {
		o.TLSMode = pgwire.TLSRequire
		o.TLSConfig = (&certs.Selector{File: cert}).TLSConfig()
	}
	tests := []struct {
		name    string
		whoisEr error
		mod     func(*proxy.Options)
		sslmode string
	}{
		{name: "unknown address", whoisEr: fmt.Errorf("tailnet: whois 100.64.0.9: peer not found")},
		{name: "node without user or tags", whoisEr: fmt.Errorf("tailnet: whois: %w", identity.ErrUnidentified)},
		{name: "over TLS", whoisEr: errors.New("whois failed"), mod: tlsRequired, sslmode: "require"},
		{name: "over direct TLS", whoisEr: errors.New("whois failed"), mod: tlsRequired, sslmode: "require&sslnegotiation=direct"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, prov := unidentifiedServer(t, tt.whoisEr, tt.mod)
			sslmode := tt.sslmode
			if sslmode == "" {
				sslmode = "disable"
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn, err := pgconn.Connect(ctx, fmt.Sprintf("postgres://x@%s/appdb?sslmode=%s", addr, sslmode))
			if err == nil {
				conn.Close(ctx)
				t.Fatal("an unidentified caller was served")
			}
			pe := pgError(err)
			if pe == nil || pe.Severity != "FATAL" || pe.Code != "28000" {
				t.Fatalf("got %v, want FATAL 28000", err)
			}
			if !strings.Contains(pe.Message, "could not identify your tailnet node") ||
				!strings.Contains(pe.Hint, "logged in as a user or carries ACL tags") ||
				!strings.Contains(pe.Hint, "Waypoint connection id") {
				t.Errorf("got message %q hint %q, want them to say what went wrong and what to do", pe.Message, pe.Hint)
			}
			if strings.Contains(pe.Message+pe.Hint, "whois") || strings.Contains(pe.Message+pe.Hint, "100.64.0.9") {
				t.Errorf("got message %q hint %q, want no internal detail", pe.Message, pe.Hint)
			}
			if n := prov.calls.Load(); n != 0 {
				t.Errorf("Ensure was called %d times for an unidentified caller, want 0", n)
			}
		})
	}

	t.Run("cancel request is dropped unanswered", func(t *testing.T) {
		addr, prov := unidentifiedServer(t, errors.New("whois failed"), nil)
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		b, err := (&pgproto3.CancelRequest{ProcessID: 1, SecretKey: []byte{0, 0, 0, 2}}).Encode(nil)
		if err != nil {
			t.Fatal(err)
		}
		mustWrite(t, conn, b)
		if data := readUntilClosed(t, conn); len(data) != 0 {
			t.Errorf("got %q for a CancelRequest, want the connection closed without an answer", data)
		}
		if n := prov.calls.Load(); n != 0 {
			t.Errorf("Ensure was called %d times, want 0", n)
		}
	})

	t.Run("silent client is closed at the handshake deadline", func(t *testing.T) {
		addr, _ := unidentifiedServer(t, errors.New("whois failed"), nil)
		conn, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		if data := readUntilClosed(t, conn); len(data) != 0 {
			t.Errorf("got %q before any startup, want the connection just closed", data)
		}
	})
}

// TestIntegration_UnidentifiedNode: end to end through the tailnet, a node
// that belongs to no user and carries no tags gets FATAL 28000 saying what
// to do, and nothing is created on the backend.
func TestIntegration_UnidentifiedNode(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	r := newRig(t, pg, nil)
	before := r.pg.Roles(t, "wp_")
	nobody := r.tn.NewClient(t, "", "nobody")
	_, err := r.connect(nobody, "appdb", nil)
	pe := pgError(err)
	if pe == nil || pe.Severity != "FATAL" || pe.Code != "28000" || !strings.Contains(pe.Message, "could not identify your tailnet node") {
		t.Fatalf("got %v, want FATAL 28000 saying Waypoint could not identify the node", err)
	}
	r.waitIdle(t)
	if after := r.pg.Roles(t, "wp_"); len(after) != len(before) {
		t.Errorf("roles: %d before, %d after the unidentified node connected; want no new role", len(before), len(after))
	}
}
