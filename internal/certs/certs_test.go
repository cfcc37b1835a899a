package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"
)

// genCert makes a self-signed certificate for names, valid until notAfter.
func genCert(t *testing.T, notAfter time.Time, names ...string) *tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: names[0]},
		DNSNames:     names,
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func TestGetCertificate_Selection(t *testing.T) {
	year := time.Now().Add(365 * 24 * time.Hour)
	file := genCert(t, year, "db.example.com")
	ts := genCert(t, year, "waypoint-db.tail1234.ts.net")
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

func TestTailscaleCert_CachedAndRefreshedBeforeExpiry(t *testing.T) {
	now := time.Now()
	fetches := 0
	certs := []*tls.Certificate{
		genCert(t, now.Add(30*24*time.Hour), "n.ts.net"),
		genCert(t, now.Add(90*24*time.Hour), "n.ts.net"),
	}
	clock := now
	sel := &Selector{
		Tailscale: func(string) (*tls.Certificate, error) {
			c := certs[min(fetches, len(certs)-1)]
			fetches++
			return c, nil
		},
		TailscaleDomains: func() []string { return []string{"n.ts.net"} },
		RefreshBefore:    7 * 24 * time.Hour,
		Now:              func() time.Time { return clock },
	}
	hello := &tls.ClientHelloInfo{ServerName: "n.ts.net"}
	for i := 0; i < 3; i++ {
		if got, _ := sel.GetCertificate(hello); got != certs[0] {
			t.Fatalf("call %d: got a different certificate, want the cached first one", i)
		}
	}
	if fetches != 1 {
		t.Errorf("got %d fetches for 3 calls, want 1 (cached)", fetches)
	}
	clock = now.Add(25 * 24 * time.Hour) // within 7 days of expiry
	if got, _ := sel.GetCertificate(hello); got != certs[1] {
		t.Errorf("near expiry: got the old certificate, want the refreshed one")
	}
	if fetches != 2 {
		t.Errorf("got %d fetches, want 2", fetches)
	}
}

func TestTailscaleCert_RefreshFailureServesValidCache(t *testing.T) {
	now := time.Now()
	cert := genCert(t, now.Add(3*24*time.Hour), "n.ts.net")
	fail := false
	sel := &Selector{
		Tailscale: func(string) (*tls.Certificate, error) {
			if fail {
				return nil, errors.New("control unreachable")
			}
			return cert, nil
		},
		TailscaleDomains: func() []string { return []string{"n.ts.net"} },
	}
	hello := &tls.ClientHelloInfo{ServerName: "n.ts.net"}
	if _, err := sel.GetCertificate(hello); err != nil {
		t.Fatal(err)
	}
	fail = true
	got, err := sel.GetCertificate(hello)
	if err != nil || got != cert {
		t.Errorf("got (%v, %v), want the cached certificate while it is still valid", got, err)
	}
}

func TestTLSConfig_MinVersion(t *testing.T) {
	if got := (&Selector{}).TLSConfig().MinVersion; got != tls.VersionTLS12 {
		t.Errorf("got MinVersion %x, want TLS 1.2", got)
	}
}
