package proxy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
)

// TestIntegration_Limits_MaxConns: the third connection of a caller limited
// to two is refused with 53300; closing one frees a slot.
func TestIntegration_Limits_MaxConns(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	r := newRig(t, pg, nil)
	g := `{"limits":{"max_conns":2},` + strings.TrimPrefix(readonlyAppdb, "{")
	alice := r.client("alice@example.com", "laptop", g)
	c1 := r.mustConnect(alice, "appdb", nil)
	r.mustConnect(alice, "appdb", nil)
	_, err := r.connect(alice, "appdb", nil)
	pe := pgError(err)
	if pe == nil || pe.Code != "53300" || !strings.Contains(pe.Message, "max_conns") {
		t.Fatalf("third connection: got %v, want 53300 naming max_conns", err)
	}
	c1.Close(context.Background())
	waitFor(t, "a freed slot", func() bool {
		c, err := r.connect(alice, "appdb", nil)
		if err == nil {
			c.Close(context.Background())
		}
		return err == nil
	})
}

// TestIntegration_Limits_MaxConnDuration: a session past max_conn_duration is
// ended with a FATAL saying so.
func TestIntegration_Limits_MaxConnDuration(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	r := newRig(t, pg, nil)
	g := `{"limits":{"max_conn_duration":"1s"},` + strings.TrimPrefix(readonlyAppdb, "{")
	alice := r.client("alice@example.com", "laptop", g)
	before := time.Now()
	conn := r.mustConnect(alice, "appdb", nil)
	err := firstFailure(t, conn)
	lasted := time.Since(before)
	pe := pgError(err)
	if pe == nil || pe.Code != "57P01" || !strings.Contains(pe.Message, "max_conn_duration") {
		t.Fatalf("after the limit: got %v, want FATAL 57P01 naming max_conn_duration", err)
	}
	if lasted < time.Second {
		t.Errorf("the session ended %v after it began, before its max_conn_duration of 1s", lasted)
	}
}

// TestIntegration_Limits_MaxBytes: a session that relays more than
// max_bytes_per_conn is ended.
func TestIntegration_Limits_MaxBytes(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	r := newRig(t, pg, nil)
	g := `{"limits":{"max_bytes_per_conn":"64KiB"},` + strings.TrimPrefix(readonlyAppdb, "{")
	alice := r.client("alice@example.com", "laptop", g)
	conn := r.mustConnect(alice, "appdb", nil)
	var s string
	err := conn.QueryRow(context.Background(), "select repeat('x', 1000000)").Scan(&s)
	if err == nil {
		t.Fatal("a 1 MB result passed a 64 KiB limit")
	}
	waitFor(t, "a log line saying the byte limit ended the session", func() bool {
		return strings.Contains(r.logs.String(), "max_bytes_per_conn")
	})
}

// TestIntegration_Revalidation_GrantRemoved: a grant removed mid-session
// closes the session at the next revalidation, and the client is told why.
func TestIntegration_Revalidation_GrantRemoved(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		r := newRig(t, pg, nil)
		alice := r.client("alice@example.com", "laptop", readonlyAppdb)
		conn := r.mustConnect(alice, "appdb", nil)
		r.grant(alice) // revoke in the tailnet policy
		if n := r.srv.Revalidate(context.Background()); n != 1 {
			t.Errorf("Revalidate closed %d sessions, want 1", n)
		}
		_, err := conn.Exec(context.Background(), "select 1")
		pe := pgError(err)
		if pe == nil || pe.Severity != "FATAL" || !strings.Contains(pe.Message, "revoked") {
			t.Fatalf("after revocation: got %v, want a FATAL saying access was revoked", err)
		}
	})
}

// TestIntegration_Revalidation_PolicyPush: with the proxy node watching the
// tailnet policy, a removed grant closes the session without waiting for the
// interval.
func TestIntegration_Revalidation_PolicyPush(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	r := newRig(t, pg, nil)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	kick := make(chan struct{}, 1)
	go r.node.WatchPolicy(ctx, func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	})
	go r.srv.RunRevalidation(ctx, time.Hour, kick)

	alice := r.client("alice@example.com", "laptop", readonlyAppdb)
	conn := r.mustConnect(alice, "appdb", nil)
	start := time.Now()
	r.grant(alice)
	waitFor(t, "the session to be closed", func() bool { return r.srv.ActiveSessions() == 0 })
	t.Logf("session closed %v after the policy change (interval 1h)", time.Since(start).Round(time.Millisecond))
	if _, err := conn.Exec(context.Background(), "select 1"); err == nil {
		t.Fatal("session still usable after the grant was removed")
	}
}

// TestIntegration_Revalidation_Downgrade: readwrite → readonly in the policy
// makes the next INSERT on the open session fail with 42501.
func TestIntegration_Revalidation_Downgrade(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		r := newRig(t, pg, nil)
		alice := r.client("alice@example.com", "laptop", readwriteAppdb)
		conn := r.mustConnect(alice, "appdb", nil)
		ctx := context.Background()
		if _, err := conn.Exec(ctx, "insert into items(name) values ('before')"); err != nil {
			t.Fatal(err)
		}
		r.grant(alice, readonlyAppdb)
		if n := r.srv.Revalidate(ctx); n != 0 {
			t.Fatalf("Revalidate closed %d sessions on a downgrade, want 0", n)
		}
		_, err := conn.Exec(ctx, "insert into items(name) values ('after')")
		if got := sqlstate(err); got != "42501" {
			t.Fatalf("insert after downgrade: got %v, want 42501", err)
		}
		var n int
		if err := conn.QueryRow(ctx, "select count(*) from items").Scan(&n); err != nil {
			t.Fatalf("select after downgrade: %v", err)
		}
	})
}

// TestIntegration_Shutdown_Drain: Shutdown waits for sessions to end; at the
// drain deadline the rest are told 57P01.
func TestIntegration_Shutdown_Drain(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	r := newRig(t, pg, nil)
	alice := r.client("alice@example.com", "laptop", grantJSON(map[string]authz.DatabaseGrant{"appdb": dbGrant("readonly")}))
	conn := r.mustConnect(alice, "appdb", nil)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if closed := r.srv.Shutdown(ctx); closed != 1 {
		t.Errorf("Shutdown closed %d sessions at the deadline, want 1", closed)
	}
	_, err := conn.Exec(context.Background(), "select 1")
	if pe := pgError(err); pe == nil || pe.Code != "57P01" {
		t.Fatalf("after shutdown: got %v, want 57P01", err)
	}
	if _, err := r.connect(alice, "appdb", nil); err == nil {
		t.Fatal("connected after shutdown")
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
