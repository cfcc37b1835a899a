package proxy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/audit"
	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

var opsOperator = proxy.Operator{Login: "ops@example.com", Machine: "ops-laptop", NodeID: "nOPS", Via: "tailnet"}

// TestIntegration_Operator_SessionsAndTerminate: the operator's snapshot
// names the caller, role and backend pid of a live session and counts its
// bytes; Terminate ends it with FATAL 57P01 saying an operator did, kills
// the backend session (a running query dies), and writes the action to the
// log and the audit log.
func TestIntegration_Operator_SessionsAndTerminate(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	auditLog := &testkit.SyncBuffer{}
	al := audit.New(auditLog)
	r := newRig(t, pg, func(o *proxy.Options) { o.Audit = al })
	alice := r.client("alice@example.com", "laptop", readonlyAppdb)
	conn := r.mustConnect(alice, "appdb", nil)
	ctx := context.Background()
	var pid uint32
	if err := conn.QueryRow(ctx, "select pg_backend_pid()").Scan(&pid); err != nil {
		t.Fatal(err)
	}

	sessions := r.srv.Sessions()
	if len(sessions) != 1 {
		t.Fatalf("Sessions() = %+v, want one", sessions)
	}
	s := sessions[0]
	if s.Login != "alice@example.com" || s.Machine != "laptop" || s.NodeID != alice.NodeID() || s.Listener != listenerName ||
		s.Database != "appdb" || s.Role != "wp_alice_laptop_appdb" || s.Preset != authz.Readonly || s.State != proxy.StateRelaying ||
		s.BackendPID != pid || !strings.HasPrefix(s.ClientAddr, alice.Addr().String()+":") || s.Started.IsZero() {
		t.Errorf("session = %+v\nwant alice on laptop, appdb as wp_alice_laptop_appdb, readonly, relaying, backend pid %d", s, pid)
	}
	if s.BytesIn == 0 || s.BytesOut == 0 {
		t.Errorf("bytes in/out = %d/%d after a query, want both counted live", s.BytesIn, s.BytesOut)
	}

	done := runQuery(conn, "select pg_sleep(60)")
	waitPgSleep(t, pg, pid)
	got, ok := r.srv.Terminate(ctx, s.ID, opsOperator)
	if !ok || got.ID != s.ID {
		t.Fatalf("Terminate(%s) = %+v, %v", s.ID, got, ok)
	}
	select {
	case err := <-done:
		pe := pgError(err)
		if pe == nil || pe.Code != "57P01" || pe.Severity != "FATAL" || !strings.Contains(pe.Message, "terminated by a Waypoint operator") {
			t.Fatalf("running query after Terminate: got %v, want FATAL 57P01 saying an operator terminated it", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the running query did not end after Terminate")
	}
	waitFor(t, "the backend session to end", func() bool {
		var n int
		pg.Super(t, "postgres").QueryRow(ctx, "select count(*) from pg_stat_activity where pid = $1", pid).Scan(&n)
		return n == 0
	})
	if _, ok := r.srv.Terminate(ctx, s.ID, opsOperator); ok {
		t.Error("Terminate of an ended session reported success")
	}
	waitFor(t, "the per-connection log line", func() bool { return strings.Contains(r.logs.String(), "outcome=terminated") })
	if !strings.Contains(r.logs.String(), "by=ops@example.com") {
		t.Errorf("log does not name the operator:\n%s", r.logs)
	}
	al.Close()
	line := auditLog.String()
	for _, want := range []string{`"kind":"console"`, `"action":"terminate"`, `"by":"ops@example.com"`, `"via":"tailnet"`, `"login":"alice@example.com"`, `"conn":"` + s.ID + `"`, `"outcome":"terminated"`} {
		if !strings.Contains(line, want) {
			t.Errorf("audit log lacks %s:\n%s", want, line)
		}
	}
}

// TestIntegration_Operator_TerminateSubjectAndRevalidate: every session of
// one identity ends together, others stay; re-checking an identity whose
// grant was removed closes its session as revalidation would.
func TestIntegration_Operator_TerminateSubjectAndRevalidate(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	r := newRig(t, pg, nil)
	ctx := context.Background()
	alice := r.client("alice@example.com", "laptop", readonlyAppdb)
	bob := r.client("bob@example.com", "desktop", readonlyAppdb)
	a1, a2 := r.mustConnect(alice, "appdb", nil), r.mustConnect(alice, "appdb", nil)
	b1 := r.mustConnect(bob, "appdb", nil)

	ended := r.srv.TerminateSubject(ctx, "alice@example.com", opsOperator)
	if len(ended) != 2 {
		t.Fatalf("TerminateSubject ended %d sessions, want 2: %+v", len(ended), ended)
	}
	for name, c := range map[string]func() error{
		"alice 1": func() error { _, err := a1.Exec(ctx, "select 1"); return err },
		"alice 2": func() error { _, err := a2.Exec(ctx, "select 1"); return err },
	} {
		if err := c(); sqlstate(err) != "57P01" {
			t.Errorf("%s after TerminateSubject: got %v, want 57P01", name, err)
		}
	}
	if _, err := b1.Exec(ctx, "select 1"); err != nil {
		t.Errorf("bob's session broke when alice's were terminated: %v", err)
	}

	if checked, closed := r.srv.RevalidateSubject(ctx, "bob@example.com", opsOperator); checked != 1 || closed != 0 {
		t.Errorf("RevalidateSubject(bob) with his grant intact = %d checked, %d closed; want 1, 0", checked, closed)
	}
	r.grant(bob) // removed from the tailnet policy
	if checked, closed := r.srv.RevalidateSubject(ctx, "bob@example.com", opsOperator); checked != 1 || closed != 1 {
		t.Errorf("RevalidateSubject(bob) after removing his grant = %d checked, %d closed; want 1, 1", checked, closed)
	}
	_, err := b1.Exec(ctx, "select 1")
	if pe := pgError(err); pe == nil || pe.Code != "57P01" || !strings.Contains(pe.Message, "revoked") {
		t.Errorf("bob after RevalidateSubject: got %v, want 57P01 saying access was revoked", err)
	}
}

// TestIntegration_Operator_Refusals: a refused connection is kept with its
// reason and the SQLSTATE and message the client got; relayed sessions are
// not refusals.
func TestIntegration_Operator_Refusals(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	refusals := proxy.NewRefusals(10)
	r := newRig(t, pg, func(o *proxy.Options) { o.Refusals = refusals })
	alice := r.client("alice@example.com", "laptop", readonlyAppdb)
	r.mustConnect(alice, "appdb", nil).Close(context.Background())
	mallory := r.client("mallory@example.com", "evil", grantJSON(map[string]authz.DatabaseGrant{"other": dbGrant("readonly")}))
	if _, err := r.connect(mallory, "appdb", nil); sqlstate(err) != "28000" {
		t.Fatalf("mallory: got %v, want 28000", err)
	}
	waitFor(t, "the refusal to be recorded", func() bool { return len(refusals.Recent()) > 0 })
	got := refusals.Recent()
	if len(got) != 1 {
		t.Fatalf("Recent() = %+v, want only mallory's refusal", got)
	}
	ref := got[0]
	if ref.Login != "mallory@example.com" || ref.Machine != "evil" || ref.Database != "appdb" || ref.Listener != listenerName ||
		ref.Reason != "no_database" || ref.SQLState != "28000" || !strings.Contains(ref.Message, "appdb") || ref.ID == "" {
		t.Errorf("refusal = %+v, want mallory on evil, appdb, no_database, 28000", ref)
	}
}

// TestIntegration_Operator_DrainingState: while the server drains after
// Shutdown, its relaying sessions are shown as draining.
func TestIntegration_Operator_DrainingState(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	r := newRig(t, pg, nil)
	alice := r.client("alice@example.com", "drain-laptop", readonlyAppdb)
	conn := r.mustConnect(alice, "appdb", nil)
	// The client is logged in once Waypoint sent ReadyForQuery; the relay
	// (and with it the state) starts right after.
	waitFor(t, "one relaying session before shutdown", func() bool {
		s := r.srv.Sessions()
		return len(s) == 1 && s[0].State == proxy.StateRelaying
	})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan int, 1)
	go func() { done <- r.srv.Shutdown(ctx) }()
	waitFor(t, "the session to be shown draining", func() bool {
		s := r.srv.Sessions()
		return len(s) == 1 && s[0].State == proxy.StateDraining
	})
	conn.Close(context.Background())
	if n := <-done; n != 0 {
		t.Errorf("Shutdown closed %d sessions, want 0 (the client left during the drain)", n)
	}
}
