package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// terminateWait bounds how long Terminate waits for the backend to exit.
const terminateWait = 5 * time.Second

// Touch records that roles are in use now (they have live sessions), so
// that Cleanup does not count their idle time from the last Ensure. It does
// not touch VALID UNTIL: a password stays valid only PasswordLifetime after
// the Ensure that set it, whatever the role's sessions do (a role can set
// its own password, and must not keep it working by staying connected).
// Roles without this Provisioner's prefix are ignored. It is one statement,
// takes no role lock and is safe for concurrent use and from several
// instances.
func (p *Provisioner) Touch(ctx context.Context, roles []string) error {
	var names []string
	for _, r := range roles {
		if strings.HasPrefix(r, p.opts.Prefix) {
			names = append(names, r)
		}
	}
	slices.Sort(names)
	names = slices.Compact(names)
	if len(names) == 0 {
		return nil
	}
	if _, err := p.adminPool.Exec(ctx, p.dialect.touchSQL(), names); err != nil {
		return backendErr("record role use", err)
	}
	p.stats.touched.Add(int64(len(names)))
	return nil
}

// Terminate ends the backend session with process ID pid (what the backend
// sent as BackendKeyData) with pg_terminate_backend, so that a revoked
// caller's running query dies, and waits up to 5 s (bounded by ctx) for it
// to exit. It refuses, with an error, a backend whose role is not a
// Waypoint user role of this prefix; a backend that no longer exists is not
// an error. The admin may terminate its roles' sessions as a non-superuser
// because it is a member of each role (Ensure grants that membership;
// PostgreSQL requires it). Not supported on CockroachDB (sessions are not
// identified by a process ID there).
func (p *Provisioner) Terminate(ctx context.Context, pid uint32) error {
	sql, err := p.dialect.terminateSQL()
	if err != nil {
		return &Error{Kind: Backend, Msg: err.Error()}
	}
	if pid == 0 || pid > 1<<31-1 {
		return &Error{Kind: Backend, Msg: fmt.Sprintf("terminate: invalid backend process ID %d", pid)}
	}
	var ours, ended bool
	err = p.adminPool.QueryRow(ctx, sql, int64(pid), p.opts.Prefix, terminateWait.Milliseconds()).Scan(&ours, &ended)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil // already gone
	case err != nil:
		return backendErr(fmt.Sprintf("terminate backend %d", pid), err)
	case !ours:
		return &Error{Kind: Backend, Msg: fmt.Sprintf("terminate: backend %d is not a Waypoint session; not terminated", pid)}
	case !ended:
		return &Error{Kind: Backend, Msg: fmt.Sprintf("terminate: backend %d did not exit within %s", pid, terminateWait)}
	}
	p.stats.terminated.Add(1)
	return nil
}

// Reconcile makes the privileges of the role Ensure(peer, eff) would use
// match eff, without rotating its password: for a live session whose grant
// changed (a readwrite→readonly downgrade takes effect on the session's
// next statement). It takes the role lock like Ensure (waiting, bounded by
// ctx, for an outstanding lease) and records the role as used. A role that
// does not exist is not an error: there is nothing to reconcile and the
// next Ensure creates it correctly. Errors are *Error, as Ensure's.
//
// The role is named from eff as in Ensure: for a preset-limited eff it is
// the role scoped to eff.Preset, so when a grant change lowers a
// preset-limited session's preset the session's own role is a different
// one; callers should close such a session instead.
func (p *Provisioner) Reconcile(ctx context.Context, peer identity.Peer, eff authz.Effective) error {
	req, err := plan.NewRequest(p.opts.Prefix, peer, eff)
	if err != nil {
		return err
	}
	lock, found, err := p.lockAndLookup(ctx, req)
	if err != nil {
		return err
	}
	defer lock.unlock()
	if _, exists, err := req.Existing(found); err != nil || !exists {
		return err
	}
	if _, err := p.applyLocked(ctx, req, found, ""); err != nil {
		return err
	}
	p.stats.reconciles.Add(1)
	return nil
}
