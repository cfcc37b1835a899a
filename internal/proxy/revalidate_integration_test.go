package proxy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
	"github.com/waypoint-proxy/waypoint/internal/tailnettest"
)

// gatedProvisioner holds the first Ensure until release is closed, so that a
// test can change the policy while a session is between its decision and
// its relay. It keeps the live-session methods of the real provisioner.
type gatedProvisioner struct {
	proxy.RoleProvisioner
	entered chan struct{} // receives once an Ensure is waiting
	release chan struct{} // closed to let every Ensure go on
}

func newGatedRig(t *testing.T, pg *pgtest.Cluster) (*rig, *gatedProvisioner) {
	t.Helper()
	gate := &gatedProvisioner{entered: make(chan struct{}, 1), release: make(chan struct{})}
	r := newRig(t, pg, func(o *proxy.Options) {
		gate.RoleProvisioner = o.Provisioner.(proxy.RoleProvisioner)
		o.Provisioner = gate
	})
	t.Cleanup(func() {
		select {
		case <-gate.release:
		default:
			close(gate.release)
		}
	})
	return r, gate
}

func (p *gatedProvisioner) Ensure(ctx context.Context, peer identity.Peer, eff authz.Effective) (proxy.Credentials, error) {
	select {
	case p.entered <- struct{}{}:
	default:
	}
	select {
	case <-p.release:
	case <-ctx.Done():
		return proxy.Credentials{}, ctx.Err()
	}
	return p.RoleProvisioner.Ensure(ctx, peer, eff)
}

// connResult is the outcome of a background connect.
type connResult struct {
	conn *pgx.Conn
	err  error
}

// connectHeld starts connecting as c in the background and returns once the
// session waits in the gated Ensure; the result arrives on the channel.
func connectHeld(t *testing.T, r *rig, gate *gatedProvisioner, c *tailnettest.Client, params map[string]string) <-chan connResult {
	t.Helper()
	done := make(chan connResult, 1)
	go func() {
		conn, err := r.connect(c, "appdb", params)
		done <- connResult{conn, err}
	}()
	select {
	case <-gate.entered:
	case res := <-done:
		t.Fatalf("the connection ended before provisioning: %v", res.err)
	case <-time.After(30 * time.Second):
		t.Fatal("the connection never reached provisioning")
	}
	return done
}

// TestIntegration_Revalidation_DuringSetup plays a caller whose access
// changes while its connection is between Waypoint's decision and the relay
// (provisioning, upstream login), when a revalidation pass runs. A revoked
// caller must be refused (FATAL 28000 saying access was revoked), not
// served with the grant it had a moment ago; a downgraded one must get the
// new, lower privileges.
func TestIntegration_Revalidation_DuringSetup(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})

	t.Run("revoked", func(t *testing.T) {
		r, gate := newGatedRig(t, pg)
		alice := r.client("setup-revoked@example.com", "laptop", readonlyAppdb)
		held := connectHeld(t, r, gate, alice, nil)
		r.grant(alice) // revoke in the tailnet policy
		if n := r.srv.Revalidate(context.Background()); n != 0 {
			t.Errorf("Revalidate closed %d sessions, want 0 (the only one is still in setup)", n)
		}
		close(gate.release)
		res := <-held
		if res.err == nil {
			res.conn.Close(context.Background())
			t.Fatal("a caller revoked during setup was served with its old grant")
		}
		pe := pgError(res.err)
		if pe == nil || pe.Severity != "FATAL" || pe.Code != "28000" || !strings.Contains(pe.Message, "revoked") {
			t.Fatalf("got %v, want FATAL 28000 saying access was revoked", res.err)
		}
		r.waitIdle(t)
		if n := r.backendSessions(t, "wp_setup_revoked_"); n != 0 {
			t.Errorf("%d backend sessions of the revoked caller remain, want 0", n)
		}
	})

	t.Run("downgraded", func(t *testing.T) {
		r, gate := newGatedRig(t, pg)
		bob := r.client("setup-downgraded@example.com", "laptop", readwriteAppdb)
		held := connectHeld(t, r, gate, bob, nil)
		r.grant(bob, readonlyAppdb)
		r.srv.Revalidate(context.Background())
		close(gate.release)
		res := <-held
		if res.err != nil {
			t.Fatalf("a caller downgraded during setup was refused: %v\nproxy log:\n%s", res.err, r.logs.String())
		}
		defer res.conn.Close(context.Background())
		_, err := res.conn.Exec(context.Background(), "insert into items(name) values ('after downgrade')")
		if got := sqlstate(err); got != "42501" {
			t.Fatalf("insert after a downgrade during setup: got %v, want 42501", err)
		}
	})
}

// withLimits returns readonlyAppdb with the given "limits" members, e.g.
// `"max_conn_duration":"1s"`.
func withLimits(members string) string {
	return `{"limits":{` + members + `},` + strings.TrimPrefix(readonlyAppdb, "{")
}

// firstFailure runs "select 1" on conn until it fails, and returns that
// first error; it fails the test if conn keeps working for 20 s.
func firstFailure(t *testing.T, conn *pgx.Conn) error {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if _, err := conn.Exec(context.Background(), "select 1"); err != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatal("the session still works 20 s after its limit was lowered below what it used")
	return nil
}

// TestIntegration_Revalidation_LimitsLowered plays a tailnet admin who
// tightens a caller's limits while the caller's sessions are open. At the
// next revalidation the open sessions run under the new limits: one already
// past a lowered max_conn_duration or max_bytes_per_conn is ended at once
// with the FATAL that limit gives; one still within them goes on, but ends
// where the new limit says.
func TestIntegration_Revalidation_LimitsLowered(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	ctx := context.Background()

	t.Run("max_conn_duration", func(t *testing.T) {
		r := newRig(t, pg, nil)
		alice := r.client("limits-duration@example.com", "laptop", withLimits(`"max_conn_duration":"1h"`))
		old := r.mustConnect(alice, "appdb", nil)
		sessions := r.srv.Sessions()
		if len(sessions) != 1 {
			t.Fatalf("Sessions() = %+v, want the one just opened", sessions)
		}
		began := sessions[0].Started
		waitFor(t, "the first session to be older than the 3 s limit to come", func() bool {
			return time.Since(began) > 3500*time.Millisecond
		})
		fresh := r.mustConnect(alice, "appdb", nil)
		r.grant(alice, withLimits(`"max_conn_duration":"3s"`))
		lowered := time.Now()
		r.srv.Revalidate(ctx)
		if _, err := fresh.Exec(ctx, "select 1"); err != nil {
			t.Fatalf("a session within the new max_conn_duration failed at once: %v", err)
		}
		// The older session is past 3 s already: it ends now, not 3 s from now.
		err := firstFailure(t, old)
		if pe := pgError(err); pe == nil || pe.Code != "57P01" || !strings.Contains(pe.Message, "max_conn_duration") {
			t.Errorf("older session: got %v, want FATAL 57P01 naming max_conn_duration", err)
		}
		if waited := time.Since(lowered); waited >= 3*time.Second {
			t.Errorf("older session ended %v after the change, want at once (it was past the new limit)", waited)
		}
		err = firstFailure(t, fresh)
		if pe := pgError(err); pe == nil || pe.Code != "57P01" || !strings.Contains(pe.Message, "max_conn_duration") {
			t.Errorf("fresh session: got %v, want FATAL 57P01 naming max_conn_duration", err)
		}
	})

	t.Run("max_bytes_per_conn", func(t *testing.T) {
		r := newRig(t, pg, nil)
		bob := r.client("limits-bytes@example.com", "laptop", withLimits(`"max_bytes_per_conn":"10MB"`))
		heavy := r.mustConnect(bob, "appdb", nil)
		var s string
		if err := heavy.QueryRow(ctx, "select repeat('x', 200000)").Scan(&s); err != nil {
			t.Fatal(err)
		}
		light := r.mustConnect(bob, "appdb", nil)
		r.grant(bob, withLimits(`"max_bytes_per_conn":"64KiB"`))
		r.srv.Revalidate(ctx)
		err := firstFailure(t, heavy)
		if pe := pgError(err); pe == nil || pe.Code != "53400" || !strings.Contains(pe.Message, "max_bytes_per_conn") {
			t.Errorf("session past the lowered limit: got %v, want FATAL 53400 naming max_bytes_per_conn", err)
		}
		if _, err := light.Exec(ctx, "select 1"); err != nil {
			t.Fatalf("a session within the lowered max_bytes_per_conn failed: %v", err)
		}
		if err := light.QueryRow(ctx, "select repeat('x', 200000)").Scan(&s); err == nil {
			t.Fatal("a 200 kB result passed a max_bytes_per_conn lowered to 64 KiB")
		}
		waitFor(t, "a log line saying the lowered byte limit ended the second session", func() bool {
			return strings.Count(r.logs.String(), "(max_bytes_per_conn)") >= 2
		})
	})
}
