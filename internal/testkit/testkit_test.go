package testkit

import (
	"crypto"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"slices"
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

func TestLogTail(t *testing.T) {
	l := &LogTail{Max: 2, Keep: func(line string) bool { return strings.Contains(line, "odd") }}
	for _, rec := range []string{
		"level=WARN msg=a\n", "level=INFO msg=ok\n", "level=INFO msg=odd\n", "level=ERROR msg=b\n", "level=INFO msg=ok\n",
	} {
		if n, err := l.Write([]byte(rec)); n != len(rec) || err != nil {
			t.Fatalf("Write(%q) = %d, %v", rec, n, err)
		}
	}
	lines, info := l.Snapshot()
	if want := []string{"level=INFO msg=odd", "level=ERROR msg=b"}; !slices.Equal(lines, want) || info != 2 {
		t.Errorf("Snapshot() = %q, %d; want %q, 2", lines, info, want)
	}
	if got := l.Take(); len(got) != 2 {
		t.Errorf("Take() = %q, want the two kept lines", got)
	}
	if got, _ := l.Snapshot(); len(got) != 0 {
		t.Errorf("after Take: %q, want none", got)
	}
}

func TestInCI(t *testing.T) {
	tests := []struct {
		env  string
		want bool
	}{
		{"", false},
		{"true", true},
		{"1", true},
		{"false", false},
		{"yes", false}, // not a Go bool: treated as unset
	}
	for _, tt := range tests {
		t.Run(tt.env, func(t *testing.T) {
			t.Setenv("CI", tt.env)
			if got := InCI(); got != tt.want {
				t.Errorf("InCI() with CI=%q = %t, want %t", tt.env, got, tt.want)
			}
		})
	}
}
