package proxy_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/waypoint-proxy/waypoint/internal/tailnettest"
)

// Helpers shared by the hostile-client, fault and soak tests.

// closeWithin bounds how long a test waits for Waypoint to close a hostile
// connection. It is a liveness bound, far above the rigs' 1 s handshake
// deadline, never a performance threshold.
const closeWithin = 20 * time.Second

// settleWithin bounds how long counts (sessions, goroutines, descriptors,
// backend connections) may take to return to their baseline.
const settleWithin = 30 * time.Second

// dialRaw opens a raw TCP connection to the listener from tailnet node c.
// The connection is closed at cleanup.
func (r *rig) dialRaw(t *testing.T, c *tailnettest.Client) net.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := r.tn.Dialer(c)(ctx, "tcp", r.addr)
	if err != nil {
		t.Fatalf("dial %s from %s: %v", r.addr, c.Machine, err)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

// readUntilClosed reads everything the server sends until it closes conn.
// It fails the test if the server keeps conn open for closeWithin.
func readUntilClosed(t *testing.T, conn net.Conn) []byte {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(closeWithin))
	var buf bytes.Buffer
	_, err := io.Copy(&buf, conn)
	if errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Waypoint kept the connection open for %v (received %q)", closeWithin, buf.Bytes())
	}
	// Any other error (a reset) also means the server closed the connection.
	return buf.Bytes()
}

// errorResponses decodes what a server sent before closing a connection
// and requires it to be nothing but ErrorResponses (after an optional
// single-byte answer to an SSLRequest or GSSENCRequest, passed as skip).
// Every ErrorResponse must be FATAL with a SQLSTATE. It returns them.
func errorResponses(t *testing.T, data []byte, skip int) []*pgproto3.ErrorResponse {
	t.Helper()
	if len(data) < skip {
		t.Fatalf("got %q, want at least %d answer bytes", data, skip)
	}
	fe := pgproto3.NewFrontend(bytes.NewReader(data[skip:]), io.Discard)
	var out []*pgproto3.ErrorResponse
	for {
		msg, err := fe.Receive()
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) && len(out) > 0 {
			return out
		}
		if err != nil {
			t.Fatalf("server sent %q: not a sequence of protocol messages: %v", data, err)
		}
		e, ok := msg.(*pgproto3.ErrorResponse)
		if !ok {
			t.Fatalf("server sent %T to a hostile client, want only ErrorResponse", msg)
		}
		if e.Severity != "FATAL" || len(e.Code) != 5 {
			t.Fatalf("got ErrorResponse %+v, want FATAL with a SQLSTATE", e)
		}
		out = append(out, &pgproto3.ErrorResponse{Severity: e.Severity, Code: e.Code, Message: e.Message, Hint: e.Hint})
	}
}

// connectDB connects as c to database, which may be any string (connect
// takes a URL path).
func (r *rig) connectDB(c *tailnettest.Client, database string) (*pgx.Conn, error) {
	cfg := r.config(c, "appdb", nil)
	cfg.Database = database
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return pgx.ConnectConfig(ctx, cfg)
}

// assertServes checks that c can connect and run a query.
func (r *rig) assertServes(t *testing.T, c *tailnettest.Client) {
	t.Helper()
	conn, err := r.connect(c, "appdb", nil)
	if err != nil {
		t.Fatalf("a normal client cannot connect any more: %v\nproxy log:\n%s", err, r.logs.String())
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(context.Background(), "select count(*) from items").Scan(&n); err != nil {
		t.Fatalf("a normal client cannot query any more: %v", err)
	}
}

// assertNoRoles checks that no backend role starts with prefix.
func (r *rig) assertNoRoles(t *testing.T, prefix string) {
	t.Helper()
	if roles := r.pg.Roles(t, prefix); len(roles) != 0 {
		t.Errorf("roles %v were created for a hostile client; want none", roles)
	}
}

// waitIdle waits until the server serves no connection.
func (r *rig) waitIdle(t *testing.T) {
	t.Helper()
	if !eventually(settleWithin, func() bool { return r.srv.ActiveSessions() == 0 }) {
		t.Fatalf("%d sessions still open after %v; want 0", r.srv.ActiveSessions(), settleWithin)
	}
}

// eventually polls cond until it holds or within has passed, reporting
// whether it held.
func eventually(within time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(within)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// goroutines returns the number of goroutines after letting finished ones
// exit.
func goroutines() int {
	runtime.GC()
	return runtime.NumGoroutine()
}

// openFDs returns the number of open file descriptors of this process, or
// -1 where /proc is unavailable.
func openFDs() int {
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return -1
	}
	return len(entries)
}

// heapAlloc returns the live heap in bytes after a garbage collection.
func heapAlloc() uint64 {
	runtime.GC()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc
}

// settles waits until count() is at most limit, and returns the last value.
func settles(limit int, count func() int) (int, bool) {
	var n int
	ok := eventually(settleWithin, func() bool { n = count(); return n <= limit })
	return n, ok
}

// backendSessions counts the backend's client sessions for roles starting
// with prefix ("" counts every client backend but the one asking).
func (r *rig) backendSessions(t *testing.T, prefix string) int {
	t.Helper()
	conn := r.pg.Super(t, "postgres")
	defer conn.Close(context.Background())
	var n int
	err := conn.QueryRow(context.Background(), `SELECT count(*) FROM pg_stat_activity
		WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
		AND starts_with(coalesce(usename, ''), $1)`, prefix).Scan(&n)
	if err != nil {
		t.Fatalf("count backend sessions: %v", err)
	}
	return n
}

// hostileName is a login or machine name built to break naive quoting: SQL
// and shell quotes, a statement separator, backslashes, a NUL-free control
// character, multi-byte Unicode, and length n in runes.
func hostileName(n int) string {
	const seed = `o'brien";DROP ROLE postgres;--\x\\ é💥 $1 %s ` + "\t"
	var b strings.Builder
	for b.Len() < 4*n && len([]rune(b.String())) < n {
		b.WriteString(seed)
	}
	return string([]rune(b.String())[:n])
}
