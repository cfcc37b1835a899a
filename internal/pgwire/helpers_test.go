package pgwire

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

// liveness bounds waits in tests; it is never a performance threshold.
const liveness = 10 * time.Second

// testKey is the cancel key the fake proxy hands to clients.
var testKey = CancelKey{ProcessID: 4242, SecretKey: 0xdeadbeef}

// fakeUpstream is what FinishStartup replays to clients in tests.
var fakeUpstream = &Upstream{ParameterStatus: map[string]string{
	"server_version":  "15.0-fake",
	"client_encoding": "UTF8",
	"DateStyle":       "ISO, MDY",
}}

// testCert is a self-signed certificate for localhost and 127.0.0.1.
type testCert struct {
	server   *tls.Config
	leaf     *x509.Certificate
	pool     *x509.CertPool
	rootFile string // PEM of leaf, for sslrootcert
}

func newTestCert(t testing.TB) *testCert {
	t.Helper()
	cert := testkit.SelfSigned(t, time.Now().Add(24*time.Hour), "localhost", "127.0.0.1")
	leaf, der := cert.Leaf, cert.Certificate[0]
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	rootFile := filepath.Join(t.TempDir(), "root.pem")
	if err := os.WriteFile(rootFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return &testCert{
		server:   &tls.Config{Certificates: []tls.Certificate{*cert}},
		leaf:     leaf,
		pool:     pool,
		rootFile: rootFile,
	}
}

// acceptResult is what the fake front door saw on one connection.
type acceptResult struct {
	client *Client
	err    error
}

// serveFront listens on loopback and runs Accept on every connection (and,
// when finish is set, FinishStartup with fakeUpstream and testKey). Each
// connection's outcome is sent on the returned channel.
func serveFront(t *testing.T, opts FrontOptions, finish bool) (addr string, results <-chan acceptResult) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	ch := make(chan acceptResult, 16)
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			go serveFrontConn(conn, opts, finish, ch)
		}
	}()
	return ln.Addr().String(), ch
}

func serveFrontConn(conn net.Conn, opts FrontOptions, finish bool, ch chan<- acceptResult) {
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), liveness)
	defer cancel()
	c, err := Accept(ctx, conn, opts)
	if err == nil && finish && c.Cancel == nil {
		err = c.FinishStartup(fakeUpstream, testKey)
	}
	ch <- acceptResult{client: c, err: err}
	if err == nil && c.Cancel == nil {
		// Stay up until the client hangs up.
		_ = conn.SetReadDeadline(time.Now().Add(liveness))
		buf := make([]byte, 512)
		for {
			if _, err := c.Conn.Read(buf); err != nil {
				return
			}
		}
	}
}

// nextResult returns the next connection outcome. Note that pgconn opens a
// second connection when its first attempt fails (sslmode=prefer against a
// server answering 'N'), which yields an outcome of its own.
func nextResult(t *testing.T, results <-chan acceptResult) acceptResult {
	t.Helper()
	select {
	case r := <-results:
		return r
	case <-time.After(liveness):
		t.Fatal("no Accept result")
		return acceptResult{}
	}
}

// dialRaw connects to addr and returns the conn with a liveness deadline.
func dialRaw(t *testing.T, addr string) net.Conn {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(liveness))
	t.Cleanup(func() { conn.Close() })
	return conn
}
