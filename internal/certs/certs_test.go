package certs

import (
	"crypto/tls"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

func TestGetCertificate_Selection(t *testing.T) {
	year := time.Now().Add(365 * 24 * time.Hour)
	file := testkit.SelfSigned(t, year, "db.example.com")
	ts := testkit.SelfSigned(t, year, "waypoint-db.tail1234.ts.net")
	fetch := func(string) (*tls.Certificate, error) { return ts, nil }
	domains := func() []string { return []string{"waypoint-db.tail1234.ts.net"} }

	tests := []struct {
		name    string
		sel     *Selector
		sni     string
		want    *tls.Certificate
		wantErr bool
	}{
		{"file matches SNI", &Selector{File: file, Tailscale: fetch, TailscaleDomains: domains}, "db.example.com", file, false},
		{"SNI case and trailing dot", &Selector{File: file}, "DB.Example.com.", file, false},
		{"no SNI prefers file", &Selector{File: file, Tailscale: fetch, TailscaleDomains: domains}, "", file, false},
		{"ts.net SNI gets tailscale cert", &Selector{File: file, Tailscale: fetch, TailscaleDomains: domains}, "waypoint-db.tail1234.ts.net", ts, false},
		{"no SNI without file gets tailscale cert", &Selector{Tailscale: fetch, TailscaleDomains: domains}, "", ts, false},
		{"unknown SNI falls back to file", &Selector{File: file, Tailscale: fetch, TailscaleDomains: domains}, "other.example.com", file, false},
		{"unknown SNI without file refused", &Selector{Tailscale: fetch, TailscaleDomains: domains}, "other.example.com", nil, true},
		{"tailscale off: ts name falls back to file", &Selector{File: file}, "waypoint-db.tail1234.ts.net", file, false},
		{"nothing configured", &Selector{}, "", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.sel.GetCertificate(&tls.ClientHelloInfo{ServerName: tt.sni})
			if tt.wantErr {
				if !errors.Is(err, ErrNoCertificate) {
					t.Fatalf("got err %v, want ErrNoCertificate", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("got err %v, want none", err)
			}
			if got != tt.want {
				t.Errorf("got certificate for %v, want %v", got.Leaf.DNSNames, tt.want.Leaf.DNSNames)
			}
		})
	}
}

func TestTailscaleCert_AskedOnEveryHandshake(t *testing.T) {
	cert := testkit.SelfSigned(t, time.Now().Add(90*24*time.Hour), "n.ts.net")
	var asked []string
	sel := &Selector{
		Tailscale: func(domain string) (*tls.Certificate, error) {
			asked = append(asked, domain)
			return cert, nil
		},
		TailscaleDomains: func() []string { return []string{"n.ts.net", "other.ts.net"} },
	}
	for _, sni := range []string{"n.ts.net", "N.TS.NET.", "", "other.ts.net"} {
		if got, err := sel.GetCertificate(&tls.ClientHelloInfo{ServerName: sni}); err != nil || got != cert {
			t.Fatalf("SNI %q: got (%v, %v), want the source's certificate", sni, got, err)
		}
	}
	// The source (tsnet) caches and renews; the Selector keeps nothing.
	want := []string{"n.ts.net", "n.ts.net", "n.ts.net", "other.ts.net"}
	if !slices.Equal(asked, want) {
		t.Errorf("source asked for %q, want %q", asked, want)
	}
}

func TestTailscaleCert_SourceFailure(t *testing.T) {
	unreachable := errors.New("control unreachable")
	tests := []struct {
		name  string
		fetch FetchFunc
		want  string
	}{
		{"error", func(string) (*tls.Certificate, error) { return nil, unreachable }, "tailscale certificate for n.ts.net: control unreachable"},
		{"nil", func(string) (*tls.Certificate, error) { return nil, nil }, "tailscale certificate for n.ts.net: empty"},
		{"no chain", func(string) (*tls.Certificate, error) { return &tls.Certificate{}, nil }, "tailscale certificate for n.ts.net: empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sel := &Selector{Tailscale: tt.fetch, TailscaleDomains: func() []string { return []string{"n.ts.net"} }}
			_, err := sel.GetCertificate(&tls.ClientHelloInfo{ServerName: "n.ts.net"})
			if err == nil || err.Error() != tt.want {
				t.Errorf("got %v, want %s", err, tt.want)
			}
		})
	}
}

func TestTLSConfig_MinVersion(t *testing.T) {
	if got := (&Selector{}).TLSConfig().MinVersion; got != tls.VersionTLS12 {
		t.Errorf("got MinVersion %x, want TLS 1.2", got)
	}
}
