package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// CleanupResult says what one Cleanup pass did.
type CleanupResult struct {
	Dropped       []string // roles dropped: they owned nothing
	Deactivated   []string // roles kept NOLOGIN because they own objects (see Cleanup)
	SkippedActive []string // idle roles kept: a session or a lease still uses them
	Errors        int      // roles that could not be cleaned up (logged; retried next pass)
}

// Cleanup runs one pass over the roles with this prefix that carry a
// Waypoint user owner record: login roles unused (no Ensure, Reconcile or
// Touch) for longer than TTL, and roles an earlier pass deactivated that no
// longer own anything. A role with a session in pg_stat_activity is skipped
// (PostgreSQL lets DROP ROLE succeed under an open session, which then
// breaks), and so is one whose lease an Ensure holds.
//
// Each role is first deactivated, under its lease: NOLOGIN and no password;
// every role membership revoked; every privilege granted to it revoked, on
// every kind of object, in its database and in every database where it has
// privileges (resetDirectSQL). Then:
//
//   - if it owns nothing, it is dropped;
//   - if it owns objects (a table, a function, ...), it is kept,
//     deactivated, with its owner record marked inactive, and its objects
//     stay exactly as they are, owned by it, data included.
//
// Objects are never reassigned: not to the admin, whose CREATEROLE a
// SECURITY DEFINER function of the user's would then run with, and not to
// any other role. A deactivated role cannot log in, holds nothing but its
// own objects and has no members besides the admin, so a SECURITY DEFINER
// function it owns runs with no rights beyond those objects. When the same
// identity connects again, Ensure reactivates the role (LOGIN, its grant's
// memberships) and the user finds its objects. The error is non-nil only
// when the pass could not run at all. On CockroachDB see cockroach.cleanRole.
func (p *Provisioner) Cleanup(ctx context.Context) (CleanupResult, error) {
	p.stats.cleanupRuns.Add(1)
	var res CleanupResult
	p.waitUnlocks(ctx) // a role released just now is not skipped as still locked
	cands, err := p.expiredRoles(ctx, p.dialect.expiredRolesSQL(), p.opts.Prefix, p.opts.TTL.Seconds())
	if err != nil {
		return res, err
	}
	for _, c := range cands {
		out, err := p.dialect.cleanRole(ctx, c.name, c.rec)
		p.countCleanup(&res, c.name, c.rec, out, err)
		if ctx.Err() != nil {
			return res, backendErr("cleanup", ctx.Err())
		}
	}
	p.dialect.afterCleanup(ctx)
	return res, nil
}

// cleanupOutcome is what Cleanup did with one role.
type cleanupOutcome struct {
	state string // outcomeDropped, outcomeDeactivated, outcomeActive or "" (left alone: it changed meanwhile)
	owned int64  // objects the role owns (outcomeDeactivated)
}

const (
	outcomeDropped     = "dropped"
	outcomeDeactivated = "deactivated"
	outcomeActive      = "active"
)

// membershipsSQL lists the roles role $1 is a member of.
const membershipsSQL = `SELECT g.rolname::text FROM pg_auth_members m
  JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
 WHERE u.rolname = $1 ORDER BY 1`

// expiredRole is a role Cleanup may clean up: with this prefix and a
// Waypoint user owner record.
type expiredRole struct {
	name string
	rec  plan.Record
}

// expiredRoles runs query, which returns (role name, owner record) of
// cleanup candidates, and keeps the Waypoint user roles with this
// provisioner's prefix.
func (p *Provisioner) expiredRoles(ctx context.Context, query string, args ...any) ([]expiredRole, error) {
	rows, err := p.adminPool.Query(ctx, query, args...)
	if err != nil {
		return nil, backendErr("list expired roles", err)
	}
	var out []expiredRole
	var name, record string
	_, err = pgx.ForEachRow(rows, []any{&name, &record}, func() error {
		if rec, ours := plan.ParseRecord(record); ours && rec.Kind == plan.RecordUser && strings.HasPrefix(name, p.opts.Prefix) {
			out = append(out, expiredRole{name, rec})
		}
		return nil
	})
	if err != nil {
		return nil, backendErr("list expired roles", err)
	}
	return out, nil
}

// countCleanup records the outcome for one role in res, the counters and
// the log.
func (p *Provisioner) countCleanup(res *CleanupResult, role string, rec plan.Record, out cleanupOutcome, err error) {
	switch {
	case err != nil:
		res.Errors++
		p.stats.cleanupErrors.Add(1)
		p.log.Warn("cleanup: could not clean up role", "role", role, "subject", rec.Subject, "err", err)
	case out.state == outcomeActive:
		res.SkippedActive = append(res.SkippedActive, role)
		p.stats.skippedActive.Add(1)
	case out.state == outcomeDropped:
		res.Dropped = append(res.Dropped, role)
		p.stats.rolesDropped.Add(1)
		p.log.Info("cleanup: dropped role", "role", role, "subject", rec.Subject, "machine", rec.Machine, "database", rec.Database)
	case out.state == outcomeDeactivated:
		res.Deactivated = append(res.Deactivated, role)
		p.stats.rolesDeactivated.Add(1)
		p.log.Info("cleanup: deactivated role that owns objects; its objects stay, owned by it (NOLOGIN, no memberships, no privileges)",
			"role", role, "subject", rec.Subject, "machine", rec.Machine, "database", rec.Database, "objects_owned", out.owned)
	}
}

// revokeMemberships revokes every role membership of role, one REVOKE at a
// time on the admin database.
func (p *Provisioner) revokeMemberships(ctx context.Context, role string) error {
	rows, err := p.adminPool.Query(ctx, membershipsSQL, role)
	if err != nil {
		return fmt.Errorf("list memberships: %w", err)
	}
	groups, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list memberships: %w", err)
	}
	for _, g := range groups {
		if err := p.execIn(ctx, p.adminDB, "REVOKE "+plan.QuoteIdent(g)+" FROM "+plan.QuoteIdent(role)); err != nil {
			return err
		}
	}
	return nil
}

// RunCleanup runs Cleanup every interval until ctx is done, and returns
// when it is. An interval <= 0 disables the sweep: RunCleanup returns at
// once. The first pass runs one interval after the call, not at once; each
// pass is bounded by interval. After every pass, report (when not nil)
// receives its result and error, a pass cut short by ctx included. A failed
// pass is logged as a warning, and a pass that dropped or deactivated a
// role, or failed on one, as info.
func (p *Provisioner) RunCleanup(ctx context.Context, interval time.Duration, report func(CleanupResult, error)) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		pass, cancel := context.WithTimeout(ctx, interval)
		res, err := p.Cleanup(pass)
		cancel()
		if report != nil {
			report(res, err)
		}
		if err != nil {
			p.log.Warn("cleanup failed", "err", err)
		} else if len(res.Dropped)+len(res.Deactivated) > 0 || res.Errors > 0 {
			p.log.Info("cleanup", "dropped", len(res.Dropped), "deactivated", len(res.Deactivated),
				"kept_in_use", len(res.SkippedActive), "errors", res.Errors)
		}
	}
}

// lockedForCleanup turns the result of a dialect's try-lock into Cleanup's:
// locked is true only when the lock was taken; otherwise out and err are
// what the step returns (outcomeActive when an Ensure holds the lock).
func lockedForCleanup(ok bool, err error) (out cleanupOutcome, locked bool, _ error) {
	switch {
	case err != nil:
		return cleanupOutcome{}, false, err
	case !ok:
		return cleanupOutcome{state: outcomeActive}, false, nil
	}
	return cleanupOutcome{}, true, nil
}

// recheck re-reads, under the role's lock, whether role is still a cleanup
// candidate, still owned by rec's identity and not in use: sql returns
// (candidate, in_use, owner record) for the role $1, given args as $2....
// clean is true only when all three hold; otherwise out is what Cleanup
// did with the role: outcomeActive when it is in use, nothing when it is
// gone or changed (without error).
func recheck(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, sql, role string, rec plan.Record, args ...any) (out cleanupOutcome, clean bool, err error) {
	var candidate, inUse bool
	var record string
	err = q.QueryRow(ctx, sql, append([]any{role}, args...)...).Scan(&candidate, &inUse, &record)
	if errors.Is(err, pgx.ErrNoRows) {
		return cleanupOutcome{}, false, nil
	}
	if err != nil {
		return cleanupOutcome{}, false, fmt.Errorf("recheck: %w", err)
	}
	if cur, ours := plan.ParseRecord(record); !ours || !cur.SameOwner(rec) || !candidate {
		return cleanupOutcome{}, false, nil
	}
	if inUse {
		return cleanupOutcome{state: outcomeActive}, false, nil
	}
	return cleanupOutcome{}, true, nil
}

// execIn runs statements one by one on a connection to database; a
// database that no longer exists is skipped.
func (p *Provisioner) execIn(ctx context.Context, database string, statements ...string) error {
	pool, err := p.workPool(database)
	if err != nil {
		return err
	}
	for _, sql := range statements {
		_, err := pool.Exec(ctx, sql)
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == sqlstateInvalidCatalogName {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s in %s: %w", strings.SplitN(sql, " ", 2)[0], database, err)
		}
	}
	return nil
}
