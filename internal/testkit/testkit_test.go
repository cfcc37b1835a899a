package testkit

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSyncBuffer_ConcurrentWriters(t *testing.T) {
	var buf SyncBuffer
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Go(func() {
			for j := 0; j < 100; j++ {
				fmt.Fprint(&buf, "x")
				_ = buf.String()
			}
		})
	}
	wg.Wait()
	if got := len(buf.String()); got != 800 {
		t.Errorf("got %d bytes, want 800", got)
	}
}

func TestServeLoopback_HandlesEachConnection(t *testing.T) {
	addr := ServeLoopback(t, func(c net.Conn) { io.Copy(c, c) })
	for i := 0; i < 3; i++ {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		c.SetDeadline(time.Now().Add(10 * time.Second))
		msg := fmt.Sprintf("ping %d", i)
		io.WriteString(c, msg)
		c.(*net.TCPConn).CloseWrite()
		got, err := io.ReadAll(c)
		c.Close()
		if err != nil || string(got) != msg {
			t.Errorf("connection %d: got (%q, %v), want %q echoed and closed", i, got, err, msg)
		}
	}
}

func TestSelfSigned(t *testing.T) {
	notAfter := time.Now().Add(48 * time.Hour).Truncate(time.Second)
	cert := SelfSigned(t, notAfter, "db.example.com", "127.0.0.1")
	leaf := cert.Leaf
	if leaf.Subject.CommonName != "db.example.com" || !leaf.NotAfter.Equal(notAfter) {
		t.Errorf("got CN %q until %v, want db.example.com until %v", leaf.Subject.CommonName, leaf.NotAfter, notAfter)
	}
	roots := x509.NewCertPool()
	roots.AddCert(leaf)
	for _, name := range []string{"db.example.com", "127.0.0.1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{DNSName: name, Roots: roots}); err != nil {
			t.Errorf("verify for %s with itself as root: %v", name, err)
		}
	}
	if err := leaf.VerifyHostname("other.example.com"); err == nil || !strings.Contains(err.Error(), "other.example.com") {
		t.Errorf("VerifyHostname(other) = %v, want a mismatch", err)
	}
	pub := cert.PrivateKey.(crypto.Signer).Public().(interface{ Equal(crypto.PublicKey) bool })
	if !pub.Equal(leaf.PublicKey) {
		t.Errorf("the private key does not belong to the certificate")
	}
}
