package proxy_test

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/waypoint-proxy/waypoint/internal/audit"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

// TestIntegration_Audit_LongSQLAndFunctionCall plays a user who tries to
// slip past the statement audit log: a statement far over the log's 64 KiB
// cap (once cut silently) and a fast-path FunctionCall (once not logged at
// all). The cut statement is logged marked truncated with its full length
// and the SHA-256 of the whole text; the call is logged with its function
// OID and argument count and sizes, never the argument's value.
func TestIntegration_Audit_LongSQLAndFunctionCall(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	var out testkit.SyncBuffer
	al := audit.New(&out)
	r := newRig(t, pg, func(o *proxy.Options) { o.Audit = al })
	c := r.client("auditee@example.com", "laptop", readonlyAppdb)
	conn := r.mustConnect(c, "appdb", nil)
	ctx := context.Background()

	long := "SELECT length('" + strings.Repeat("x", 100_000) + "')"
	if _, err := conn.Exec(ctx, long); err != nil {
		t.Fatalf("long statement: %v", err)
	}
	var oid uint32
	if err := conn.QueryRow(ctx, "SELECT 'md5(text)'::regprocedure::oid").Scan(&oid); err != nil {
		t.Fatal(err)
	}
	const secret = "secret-argument"
	want := md5.Sum([]byte(secret))
	if got := functionCall(t, conn.PgConn().Frontend(), oid, secret); got != hex.EncodeToString(want[:]) {
		t.Fatalf("FunctionCall md5(%q) = %q, want %x", secret, got, want)
	}
	conn.Close(ctx)
	r.waitIdle(t)
	if err := al.Close(); err != nil {
		t.Fatal(err)
	}

	log := out.String()
	if strings.Contains(log, secret) {
		t.Errorf("the audit log holds the function argument's value %q", secret)
	}
	sum := sha256.Sum256([]byte(long))
	var sawLong, sawCall bool
	for _, ln := range strings.Split(strings.TrimSpace(log), "\n") {
		var e struct {
			Kind         string              `json:"kind"`
			SQL          string              `json:"sql"`
			SQLTruncated bool                `json:"sql_truncated"`
			SQLBytes     int                 `json:"sql_bytes"`
			SQLSHA256    string              `json:"sql_sha256"`
			Login        string              `json:"login"`
			Function     *audit.FunctionCall `json:"function"`
		}
		if err := json.Unmarshal([]byte(ln), &e); err != nil {
			t.Fatalf("audit line %q: %v", ln, err)
		}
		switch {
		case strings.HasPrefix(e.SQL, "SELECT length('xxx"):
			sawLong = true
			if !e.SQLTruncated || e.SQLBytes != len(long) || e.SQLSHA256 != hex.EncodeToString(sum[:]) || len(e.SQL) != audit.MaxSQL {
				t.Errorf("long statement logged as truncated=%v, %d bytes, sha256 %s, %d bytes kept; want true, %d, %x, %d",
					e.SQLTruncated, e.SQLBytes, e.SQLSHA256, len(e.SQL), len(long), sum, audit.MaxSQL)
			}
		case e.Kind == audit.KindFunctionCall:
			sawCall = true
			if e.Function == nil || e.Function.OID != oid || e.Function.Args != 1 ||
				len(e.Function.ArgSizes) != 1 || e.Function.ArgSizes[0] != int32(len(secret)) || e.Login != c.Login {
				t.Errorf("function call logged as %+v by %q, want OID %d, 1 argument of %d bytes, by %q", e.Function, e.Login, oid, len(secret), c.Login)
			}
		}
	}
	if !sawLong || !sawCall {
		t.Fatalf("audit log (long statement seen: %v, function call seen: %v):\n%.2000s", sawLong, sawCall, log)
	}
}

// functionCall calls function oid with one text argument over the
// fast-path protocol, as libpq's PQfn does, and returns the result.
func functionCall(t *testing.T, fe *pgproto3.Frontend, oid uint32, arg string) string {
	t.Helper()
	fe.Send(&pgproto3.FunctionCall{Function: oid, ArgFormatCodes: []uint16{0}, Arguments: [][]byte{[]byte(arg)}})
	if err := fe.Flush(); err != nil {
		t.Fatalf("send FunctionCall: %v", err)
	}
	var result string
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("FunctionCall: %v", err)
		}
		switch m := msg.(type) {
		case *pgproto3.FunctionCallResponse:
			result = string(m.Result)
		case *pgproto3.ErrorResponse:
			t.Fatalf("FunctionCall: %s %s", m.Code, m.Message)
		case *pgproto3.ReadyForQuery:
			return result
		}
	}
}
