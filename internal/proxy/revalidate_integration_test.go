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
	"github.com/waypoint-proxy/waypoint/internal/provision"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
	"github.com/waypoint-proxy/waypoint/internal/tailnettest"
)

// gatedProvisioner holds the first Ensure until release is closed, so that a
// test can change the policy while a session is between its decision and
// its relay. It keeps the live-session methods of the real provisioner.
type gatedProvisioner struct {
	*provision.Provisioner
	entered chan struct{} // receives once an Ensure is waiting
	release chan struct{} // closed to let every Ensure go on
}

func newGatedRig(t *testing.T, pg *pgtest.Cluster) (*rig, *gatedProvisioner) {
	t.Helper()
	gate := &gatedProvisioner{entered: make(chan struct{}, 1), release: make(chan struct{})}
	r := newRig(t, pg, func(o *proxy.Options) {
		gate.Provisioner = o.Provisioner.(*provision.Provisioner)
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

func (p *gatedProvisioner) Ensure(ctx context.Context, peer identity.Peer, eff authz.Effective) (*provision.Lease, error) {
	select {
	case p.entered <- struct{}{}:
	default:
	}
	select {
	case <-p.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return p.Provisioner.Ensure(ctx, peer, eff)
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
