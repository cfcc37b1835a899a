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
)

// userRecordPrefix starts the comment of every Waypoint user role
// (ownerRecord marshals its fields in declaration order).
const userRecordPrefix = `{"waypoint":1,"kind":"user"`

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
	sql := touchSQL
	if p.crdb {
		sql = crdbTouchSQL
	}
	if _, err := p.admin.Exec(ctx, sql, names); err != nil {
		return backendErr("record role use", err)
	}
	p.stats.touched.Add(int64(len(names)))
	return nil
}

// touchSQL marks the roles $1 used now, in the lease table (which has a row
// for every role an Ensure locked).
const touchSQL = `UPDATE ` + leaseTable + ` SET last_used = now() WHERE role = ANY($1::text[])`

// terminateSQL terminates backend $1 if its role has the prefix $2 and a
// Waypoint user record, waiting up to $3 ms for it to exit. No row: there is
// no such backend. ours false: it is not a Waypoint session (not touched).
const terminateSQL = `SELECT ours, CASE WHEN ours THEN pg_terminate_backend(pid, $3::int8) ELSE false END
  FROM (SELECT a.pid, coalesce(starts_with(r.rolname, $2)
               AND starts_with(coalesce(shobj_description(r.oid, 'pg_authid'), ''), '` + userRecordPrefix + `'), false) AS ours
          FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
         WHERE a.pid = $1::int4) s`

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
	if p.crdb {
		return &Error{Kind: Backend, Msg: "terminating a session is not supported on CockroachDB"}
	}
	if pid == 0 || pid > 1<<31-1 {
		return &Error{Kind: Backend, Msg: fmt.Sprintf("terminate: invalid backend process ID %d", pid)}
	}
	var ours, ended bool
	err := p.admin.QueryRow(ctx, terminateSQL, int64(pid), p.opts.Prefix, terminateWait.Milliseconds()).Scan(&ours, &ended)
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
	req, err := newRequest(p.opts.Prefix, peer, eff)
	if err != nil {
		return err
	}
	lock, lk, err := p.lockAndLookup(ctx, req)
	if err != nil {
		return err
	}
	defer lock.unlock()
	if _, exists, err := resolveName(req.primary, req.alternate, req.want, lk.Roles); err != nil || !exists {
		return err
	}
	if _, err := p.applyLocked(ctx, req, lk, ""); err != nil {
		return err
	}
	p.stats.reconciles.Add(1)
	return nil
}
