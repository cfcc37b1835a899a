package pgwire

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// packet builds a startup packet from a code/version and a raw body. Tests
// use it for malformed packets that pgproto3 cannot encode.
func packet(code uint32, body []byte) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(8+len(body)))
	b = binary.BigEndian.AppendUint32(b, code)
	return append(b, body...)
}

// header is a bare length + code, without the body the length promises.
func header(length, code uint32) []byte {
	return binary.BigEndian.AppendUint32(binary.BigEndian.AppendUint32(nil, length), code)
}

// startupOfSize returns a 3.0 StartupMessage of exactly size bytes.
func startupOfSize(size int) []byte {
	fixed := len(packet(3<<16, []byte("user\x00u\x00application_name\x00\x00\x00")))
	return packet(3<<16, []byte("user\x00u\x00application_name\x00"+strings.Repeat("x", size-fixed)+"\x00\x00"))
}

func TestAccept_StartupErrors(t *testing.T) {
	v30 := uint32(3 << 16)
	tests := []struct {
		name     string
		send     []byte
		wantCode string
		wantMsg  string
	}{
		{name: "no user", send: packet(v30, []byte("database\x00db\x00\x00")), wantCode: "28000", wantMsg: "no PostgreSQL user name specified in startup packet"},
		{name: "empty user", send: packet(v30, []byte("user\x00\x00\x00")), wantCode: "28000", wantMsg: "no PostgreSQL user name"},
		{name: "protocol 2.0", send: packet(2<<16, []byte("user\x00u\x00\x00")), wantCode: "0A000", wantMsg: "unsupported frontend protocol 2.0"},
		{name: "protocol 4.0", send: packet(4<<16, []byte("user\x00u\x00\x00")), wantCode: "0A000", wantMsg: "unsupported frontend protocol 4.0"},
		{name: "unknown request code", send: packet(1234<<16|5681, nil), wantCode: "0A000", wantMsg: "unsupported frontend protocol 1234.5681"},
		{name: "duplicate parameter", send: packet(v30, []byte("user\x00a\x00user\x00b\x00\x00")), wantCode: "08P01", wantMsg: `duplicate parameter "user"`},
		{name: "no final terminator", send: packet(v30, []byte("user\x00u\x00")), wantCode: "08P01", wantMsg: "expected terminator as last byte"},
		{name: "bytes after terminator", send: packet(v30, []byte("user\x00u\x00\x00junk")), wantCode: "08P01", wantMsg: "expected terminator as last byte"},
		{name: "value without NUL", send: packet(v30, []byte("user\x00u")), wantCode: "08P01", wantMsg: `missing value for parameter "user"`},
		{name: "no parameters at all", send: packet(v30, nil), wantCode: "08P01", wantMsg: "expected terminator"},
		{name: "length below 8", send: header(7, v30), wantCode: "08P01", wantMsg: "invalid length of startup packet"},
		{name: "length 100 MB", send: header(100<<20, v30), wantCode: "08P01", wantMsg: "startup packet too large"},
		{name: "10001-byte startup", send: startupOfSize(10001), wantCode: "08P01", wantMsg: "startup packet too large"},
		{name: "SSLRequest with a body", send: packet(sslRequestCode, []byte("xxxx")), wantCode: "08P01", wantMsg: "invalid SSLRequest"},
		{name: "GSSENCRequest with a body", send: packet(gssEncRequestCode, []byte("x")), wantCode: "08P01", wantMsg: "invalid GSSENCRequest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, results := serveFront(t, FrontOptions{}, false)
			conn := dialRaw(t, addr)
			if _, err := conn.Write(tt.send); err != nil {
				t.Fatal(err)
			}
			res := nextResult(t, results)
			var pe *ProtocolError
			if !errors.As(res.err, &pe) {
				t.Fatalf("got Accept error %v, want a *ProtocolError", res.err)
			}
			if pe.Code != tt.wantCode || !pe.Sent {
				t.Errorf("got code %s sent %v, want %s sent", pe.Code, pe.Sent, tt.wantCode)
			}
			msg, err := pgproto3.NewFrontend(conn, conn).Receive()
			if err != nil {
				t.Fatalf("client read: %v", err)
			}
			er, ok := msg.(*pgproto3.ErrorResponse)
			if !ok {
				t.Fatalf("got %s, want ErrorResponse", describe(msg))
			}
			if er.Severity != "FATAL" || er.Code != tt.wantCode || !strings.Contains(er.Message, tt.wantMsg) {
				t.Errorf("got %s %s %q, want FATAL %s containing %q", er.Severity, er.Code, er.Message, tt.wantCode, tt.wantMsg)
			}
		})
	}
}

func TestAccept_MaxStartupSizeBoundary(t *testing.T) {
	addr, results := serveFront(t, FrontOptions{}, false)
	conn := dialRaw(t, addr)
	if _, err := conn.Write(startupOfSize(DefaultMaxStartupSize)); err != nil {
		t.Fatal(err)
	}
	if res := nextResult(t, results); res.err != nil {
		t.Fatalf("got %v for a %d-byte startup, want success", res.err, DefaultMaxStartupSize)
	}
}

// memConn is an in-memory net.Conn: reads come from r, writes are discarded,
// deadlines are ignored.
type memConn struct {
	r io.Reader
	w io.Writer
}

func (c *memConn) Read(p []byte) (int, error)       { return c.r.Read(p) }
func (c *memConn) Write(p []byte) (int, error)      { return c.w.Write(p) }
func (c *memConn) Close() error                     { return nil }
func (c *memConn) LocalAddr() net.Addr              { return &net.TCPAddr{} }
func (c *memConn) RemoteAddr() net.Addr             { return &net.TCPAddr{} }
func (c *memConn) SetDeadline(time.Time) error      { return nil }
func (c *memConn) SetReadDeadline(time.Time) error  { return nil }
func (c *memConn) SetWriteDeadline(time.Time) error { return nil }

func TestAccept_OversizedLengthAllocatesNothing(t *testing.T) {
	// A client announcing a 100 MB packet (then sending it) must be refused
	// before anything near that size is allocated.
	stream := io.MultiReader(bytes.NewReader(header(100<<20, 3<<16)), &zeroReader{})
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	_, err := Accept(context.Background(), &memConn{r: stream, w: io.Discard}, FrontOptions{})
	runtime.ReadMemStats(&after)
	var pe *ProtocolError
	if !errors.As(err, &pe) || pe.Msg != "startup packet too large" {
		t.Fatalf("got %v, want startup packet too large", err)
	}
	if got := after.TotalAlloc - before.TotalAlloc; got > 1<<20 {
		t.Errorf("got %d bytes allocated, want far less than the announced 100 MB", got)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) { clear(p); return len(p), nil }

func TestAccept_EncryptionRequests(t *testing.T) {
	cert := newTestCert(t)
	ssl, _ := (&pgproto3.SSLRequest{}).Encode(nil)
	gss, _ := (&pgproto3.GSSEncRequest{}).Encode(nil)
	tests := []struct {
		name    string
		opts    FrontOptions
		send    [][]byte // each answered by one byte
		answers string
	}{
		{name: "GSSENCRequest refused", opts: FrontOptions{TLSMode: TLSOptional, TLSConfig: cert.server}, send: [][]byte{gss}, answers: "N"},
		{name: "SSLRequest with TLS off", opts: FrontOptions{TLSMode: TLSOff, TLSConfig: cert.server}, send: [][]byte{ssl}, answers: "N"},
		{name: "SSLRequest without a certificate", opts: FrontOptions{TLSMode: TLSOptional}, send: [][]byte{ssl}, answers: "N"},
		{name: "GSSENC then SSL, both refused", opts: FrontOptions{}, send: [][]byte{gss, ssl}, answers: "NN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, results := serveFront(t, tt.opts, false)
			conn := dialRaw(t, addr)
			for i, req := range tt.send {
				if _, err := conn.Write(req); err != nil {
					t.Fatal(err)
				}
				var b [1]byte
				if _, err := io.ReadFull(conn, b[:]); err != nil {
					t.Fatal(err)
				}
				if b[0] != tt.answers[i] {
					t.Errorf("request %d: got answer %q, want %q", i, b[0], tt.answers[i])
				}
			}
			sendStartup(t, conn, pgproto3.ProtocolVersion30, map[string]string{"user": "u"})
			res := nextResult(t, results)
			if res.err != nil || res.client.TLS {
				t.Fatalf("got %v (TLS %v), want a plaintext client", res.err, res.client != nil && res.client.TLS)
			}
		})
	}
}

func TestAccept_RepeatedEncryptionRequestIsProtocolError(t *testing.T) {
	cert := newTestCert(t)
	ssl, _ := (&pgproto3.SSLRequest{}).Encode(nil)
	gss, _ := (&pgproto3.GSSEncRequest{}).Encode(nil)
	tests := []struct {
		name   string
		first  []byte
		useTLS bool
		second []byte
	}{
		{name: "SSLRequest inside TLS", first: ssl, useTLS: true, second: ssl},
		{name: "GSSENCRequest inside TLS", first: ssl, useTLS: true, second: gss},
		{name: "second GSSENCRequest", first: gss, second: gss},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, results := serveFront(t, FrontOptions{TLSMode: TLSOptional, TLSConfig: cert.server}, false)
			var conn net.Conn = dialRaw(t, addr)
			if _, err := conn.Write(tt.first); err != nil {
				t.Fatal(err)
			}
			var b [1]byte
			if _, err := io.ReadFull(conn, b[:]); err != nil {
				t.Fatal(err)
			}
			if tt.useTLS {
				tc := tls.Client(conn, &tls.Config{RootCAs: cert.pool, ServerName: "localhost"})
				if err := tc.Handshake(); err != nil {
					t.Fatal(err)
				}
				conn = tc
			}
			if _, err := conn.Write(tt.second); err != nil {
				t.Fatal(err)
			}
			res := nextResult(t, results)
			var pe *ProtocolError
			if !errors.As(res.err, &pe) || pe.Code != "08P01" {
				t.Fatalf("got %v, want a 08P01 *ProtocolError", res.err)
			}
			msg, err := pgproto3.NewFrontend(conn, conn).Receive()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := msg.(*pgproto3.ErrorResponse); !ok {
				t.Errorf("got %s, want ErrorResponse", describe(msg))
			}
		})
	}
}

func TestAccept_DirectTLSRefused(t *testing.T) {
	cert := newTestCert(t)
	tests := []struct {
		name      string
		opts      FrontOptions
		alpn      []string
		wantMsg   string
		wantSent  bool
		handshake bool // whether the client's TLS handshake succeeds
	}{
		{name: "TLS off", opts: FrontOptions{TLSMode: TLSOff, TLSConfig: cert.server}, alpn: []string{"postgresql"},
			wantMsg: "TLS is not enabled"},
		{name: "no certificate", opts: FrontOptions{TLSMode: TLSRequire}, alpn: []string{"postgresql"},
			wantMsg: "TLS is not enabled"},
		{name: "no ALPN", opts: FrontOptions{TLSMode: TLSOptional, TLSConfig: cert.server},
			wantMsg: "ALPN", wantSent: true, handshake: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, results := serveFront(t, tt.opts, false)
			conn := dialRaw(t, addr)
			tc := tls.Client(conn, &tls.Config{RootCAs: cert.pool, ServerName: "localhost", NextProtos: tt.alpn})
			herr := tc.Handshake()
			if (herr == nil) != tt.handshake {
				t.Errorf("got client handshake error %v, want success %v", herr, tt.handshake)
			}
			res := nextResult(t, results)
			var pe *ProtocolError
			if !errors.As(res.err, &pe) || !strings.Contains(pe.Msg, tt.wantMsg) || pe.Sent != tt.wantSent {
				t.Errorf("got %v, want a *ProtocolError about %q with Sent %v", res.err, tt.wantMsg, tt.wantSent)
			}
		})
	}
}

func TestAccept_Deadline(t *testing.T) {
	tests := []struct {
		name    string
		send    []byte
		cancel  bool // cancel ctx instead of letting its deadline pass
		wantErr error
	}{
		{name: "client sends nothing", wantErr: context.DeadlineExceeded},
		{name: "client stalls mid-packet", send: header(40, 3<<16), wantErr: context.DeadlineExceeded},
		{name: "ctx cancelled", cancel: true, wantErr: context.Canceled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			client, server := net.Pipe()
			defer client.Close()
			defer server.Close()
			go func() { _, _ = client.Write(tt.send); _, _ = io.Copy(io.Discard, client) }()
			ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
			if tt.cancel {
				ctx, cancel = context.WithCancel(context.Background())
				time.AfterFunc(20*time.Millisecond, cancel)
			}
			defer cancel()
			done := make(chan error, 1)
			go func() { _, err := Accept(ctx, server, FrontOptions{}); done <- err }()
			select {
			case err := <-done:
				if !errors.Is(err, tt.wantErr) {
					t.Errorf("got %v, want %v", err, tt.wantErr)
				}
			case <-time.After(liveness):
				t.Fatal("Accept did not return after its deadline")
			}
		})
	}
}

func TestAccept_ClearsDeadline(t *testing.T) {
	client, server := net.Pipe()
	defer client.Close()
	defer server.Close()
	startup, err := (&pgproto3.StartupMessage{ProtocolVersion: pgproto3.ProtocolVersion30, Parameters: map[string]string{"user": "u"}}).Encode(nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() { _, _ = client.Write(startup) }()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	c, err := Accept(ctx, server, FrontOptions{})
	if err != nil {
		t.Fatal(err)
	}
	<-ctx.Done() // the handshake deadline has now passed
	go func() { _, _ = client.Write([]byte("Q")) }()
	var b [1]byte
	if _, err := c.Conn.Read(b[:]); err != nil {
		t.Fatalf("read after Accept: got %v, want no deadline error", err)
	}
}

func TestAccept_CancelRequest(t *testing.T) {
	cert := newTestCert(t)
	tests := []struct {
		name    string
		key     []byte
		useTLS  bool
		wantKey *CancelKey
	}{
		{name: "plaintext", key: []byte{0xde, 0xad, 0xbe, 0xef}, wantKey: &CancelKey{ProcessID: 77, SecretKey: 0xdeadbeef}},
		{name: "inside TLS", key: []byte{0, 0, 0, 1}, useTLS: true, wantKey: &CancelKey{ProcessID: 77, SecretKey: 1}},
		{name: "3.2-style 32-byte key", key: bytes.Repeat([]byte{1}, 32)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr, results := serveFront(t, FrontOptions{TLSMode: TLSRequire, TLSConfig: cert.server}, false)
			var conn net.Conn = dialRaw(t, addr)
			if tt.useTLS {
				ssl, _ := (&pgproto3.SSLRequest{}).Encode(nil)
				_, _ = conn.Write(ssl)
				var b [1]byte
				_, _ = io.ReadFull(conn, b[:])
				tc := tls.Client(conn, &tls.Config{RootCAs: cert.pool, ServerName: "localhost"})
				if err := tc.Handshake(); err != nil {
					t.Fatal(err)
				}
				conn = tc
			}
			buf, err := (&pgproto3.CancelRequest{ProcessID: 77, SecretKey: tt.key}).Encode(nil)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Write(buf); err != nil {
				t.Fatal(err)
			}
			res := nextResult(t, results)
			if tt.wantKey == nil {
				var pe *ProtocolError
				if !errors.As(res.err, &pe) || pe.Sent {
					t.Fatalf("got %v, want a *ProtocolError with nothing sent", res.err)
				}
			} else {
				if res.err != nil {
					t.Fatal(res.err)
				}
				if res.client.Cancel == nil || *res.client.Cancel != *tt.wantKey || res.client.Params != nil {
					t.Fatalf("got cancel %v params %v, want %v and no params", res.client.Cancel, res.client.Params, *tt.wantKey)
				}
			}
			// Nothing is ever sent back for a cancel request.
			if got, _ := io.ReadAll(conn); len(got) != 0 {
				t.Errorf("got %q sent back, want nothing", got)
			}
		})
	}
}

func TestParseStartupParams(t *testing.T) {
	tests := []struct {
		in      string
		want    map[string]string
		wantErr string
	}{
		{in: "user\x00u\x00\x00", want: map[string]string{"user": "u"}},
		{in: "user\x00u\x00options\x00-c a=b\x00\x00", want: map[string]string{"user": "u", "options": "-c a=b"}},
		{in: "user\x00\x00\x00", want: map[string]string{"user": ""}},
		{in: "\x00", want: map[string]string{}},
		{in: "", wantErr: "expected terminator"},
		{in: "user\x00u\x00", wantErr: "expected terminator"},
		{in: "\x00\x00", wantErr: "expected terminator"},
		{in: "user\x00u", wantErr: "missing value"},
		{in: "a\x001\x00a\x002\x00\x00", wantErr: "duplicate"},
	}
	for _, tt := range tests {
		t.Run(strings.ReplaceAll(tt.in, "\x00", "|"), func(t *testing.T) {
			got, err := parseStartupParams([]byte(tt.in))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !equalMaps(got, tt.want) {
				t.Errorf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestAccept_InvalidOptions(t *testing.T) {
	for _, opts := range []FrontOptions{{TLSMode: "sometimes"}, {MaxStartupSize: -1}} {
		if _, err := Accept(context.Background(), &memConn{r: bytes.NewReader(nil), w: io.Discard}, opts); err == nil {
			t.Errorf("Accept with %+v: got nil error, want one", opts)
		}
	}
}
