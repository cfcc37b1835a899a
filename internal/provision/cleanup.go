package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
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
// when the pass could not run at all. On CockroachDB see dropRoleCRDB.
func (p *Provisioner) Cleanup(ctx context.Context) (CleanupResult, error) {
	p.stats.cleanupRuns.Add(1)
	var res CleanupResult
	query, clean := expiredRolesSQL, p.cleanRole
	if p.crdb {
		query, clean = crdbExpiredRolesSQL, p.dropRoleCRDB
	} else {
		p.waitUnlocks(ctx) // a role released just now is not "in use"
	}
	cands, err := p.expiredRoles(ctx, query, p.opts.Prefix, p.opts.TTL.Seconds())
	if err != nil {
		return res, err
	}
	for _, c := range cands {
		out, err := clean(ctx, c.name, c.rec)
		p.countCleanup(&res, c.name, c.rec, out, err)
		if ctx.Err() != nil {
			return res, backendErr("cleanup", ctx.Err())
		}
	}
	if !p.crdb {
		p.forgetLeases(ctx)
	}
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

// expiredRolesSQL lists roles with the prefix $1 that are candidates for
// cleanup, with their comments (owner records): login roles whose last use
// (or, for roles from before last use was recorded, VALID UNTIL) is more
// than $2 seconds ago, and NOLOGIN roles that own nothing.
const expiredRolesSQL = `SELECT r.rolname::text, coalesce(shobj_description(r.oid, 'pg_authid'), '')
  FROM pg_roles r LEFT JOIN ` + leaseTable + ` w ON w.role = r.rolname
 WHERE starts_with(r.rolname, $1) AND ` + idleSQL + `
 ORDER BY 1`

// idleSQL is the condition on pg_roles r, leaseTable w and the TTL in
// seconds $2 that makes a role a cleanup candidate.
const idleSQL = `CASE WHEN r.rolcanlogin
       THEN coalesce(w.last_used + make_interval(secs => $2) < now(), r.rolvaliduntil < now())
       ELSE NOT EXISTS (SELECT 1 FROM pg_shdepend d
                         WHERE d.refclassid = 'pg_authid'::regclass AND d.refobjid = r.oid AND d.deptype = 'o')
     END`

// recheckSQL re-reads role $1 under its lease: still a candidate (TTL $2
// seconds), whether any session of it is open, its owner record.
const recheckSQL = `SELECT ` + idleSQL + `,
       EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.usename = r.rolname),
       coalesce(shobj_description(r.oid, 'pg_authid'), '')
  FROM pg_roles r LEFT JOIN ` + leaseTable + ` w ON w.role = r.rolname WHERE r.rolname = $1`

// dependenciesSQL lists what role $1 has in each database (dbid 0: shared
// objects): the number of objects it owns and the database name.
const dependenciesSQL = `SELECT coalesce(d.datname::text, ''), count(*) FILTER (WHERE s.deptype = 'o')
  FROM pg_shdepend s LEFT JOIN pg_database d ON d.oid = s.dbid
 WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1)
 GROUP BY 1 ORDER BY 1`

// membershipsSQL lists the roles role $1 is a member of.
const membershipsSQL = `SELECT g.rolname::text FROM pg_auth_members m
  JOIN pg_roles g ON g.oid = m.roleid JOIN pg_roles u ON u.oid = m.member
 WHERE u.rolname = $1 ORDER BY 1`

// expiredRole is a role Cleanup may clean up: with this prefix and a
// Waypoint user owner record.
type expiredRole struct {
	name string
	rec  ownerRecord
}

// expiredRoles runs query, which returns (role name, owner record) of
// cleanup candidates, and keeps the Waypoint user roles with this
// provisioner's prefix.
func (p *Provisioner) expiredRoles(ctx context.Context, query string, args ...any) ([]expiredRole, error) {
	rows, err := p.admin.Query(ctx, query, args...)
	if err != nil {
		return nil, backendErr("list expired roles", err)
	}
	var out []expiredRole
	var name, record string
	_, err = pgx.ForEachRow(rows, []any{&name, &record}, func() error {
		if rec, ours := parseRecord(record); ours && rec.Kind == recordUser && strings.HasPrefix(name, p.opts.Prefix) {
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
func (p *Provisioner) countCleanup(res *CleanupResult, role string, rec ownerRecord, out cleanupOutcome, err error) {
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

// cleanRole cleans up one candidate under its lease (see Cleanup).
func (p *Provisioner) cleanRole(ctx context.Context, role string, rec ownerRecord) (cleanupOutcome, error) {
	lock, ok, err := p.tryLockRole(ctx, role)
	if err != nil || !ok {
		if err == nil {
			return cleanupOutcome{state: outcomeActive}, nil
		}
		return cleanupOutcome{}, err
	}
	defer lock.unlock()
	if clean, active, err := recheck(ctx, p.admin, recheckSQL, role, rec, p.opts.TTL.Seconds()); !clean {
		if active {
			return cleanupOutcome{state: outcomeActive}, err
		}
		return cleanupOutcome{}, err
	}
	owned, dbs, err := p.dependencies(ctx, role, rec.Database)
	if err != nil {
		return cleanupOutcome{}, err
	}
	if err := p.deactivate(ctx, role, dbs); err != nil {
		return cleanupOutcome{}, err
	}
	if owned == 0 {
		_, err := p.admin.Exec(ctx, "DROP ROLE "+quoteIdent(role))
		var pgErr *pgconn.PgError
		switch {
		case err == nil:
			return cleanupOutcome{state: outcomeDropped}, nil
		case !errors.As(err, &pgErr) || pgErr.Code != sqlstateDependentObjects:
			return cleanupOutcome{}, fmt.Errorf("drop role: %w", err)
		}
		// It holds something the admin cannot revoke (a privilege another
		// role granted it): keep it deactivated.
		p.log.Info("cleanup: role holds privileges the admin cannot revoke; keeping it deactivated", "role", role, "detail", pgErr.Detail)
	}
	rec.State, rec.SQL, rec.Grant = stateInactive, "", ""
	if _, err := p.admin.Exec(ctx, "COMMENT ON ROLE "+quoteIdent(role)+" IS "+quoteLiteral(rec.String())); err != nil {
		return cleanupOutcome{}, fmt.Errorf("mark role inactive: %w", err)
	}
	return cleanupOutcome{state: outcomeDeactivated, owned: owned}, nil
}

// dependencies returns how many objects role owns (in every database) and
// the databases where it owns objects or holds privileges, with home (its
// own database) first.
func (p *Provisioner) dependencies(ctx context.Context, role, home string) (owned int64, dbs []string, err error) {
	rows, err := p.admin.Query(ctx, dependenciesSQL, role)
	if err != nil {
		return 0, nil, fmt.Errorf("list the role's objects: %w", err)
	}
	dbs = []string{home}
	var db string
	var n int64
	_, err = pgx.ForEachRow(rows, []any{&db, &n}, func() error {
		owned += n
		if db != "" && db != home {
			dbs = append(dbs, db)
		}
		return nil
	})
	if err != nil {
		return 0, nil, fmt.Errorf("list the role's objects: %w", err)
	}
	return owned, dbs, nil
}

// deactivate makes role unable to log in or to use anything but its own
// objects: NOLOGIN without a password, no role memberships, and no
// privilege the admin can revoke in dbs (cluster-wide ones included).
func (p *Provisioner) deactivate(ctx context.Context, role string, dbs []string) error {
	r := quoteIdent(role)
	// The admin must be a member to revoke privileges the role's own
	// objects were granted with and to alter its default privileges.
	for _, sql := range []string{"ALTER ROLE " + r + " WITH NOLOGIN PASSWORD NULL", "GRANT " + r + " TO CURRENT_USER"} {
		if _, err := p.admin.Exec(ctx, sql); err != nil && !isAlreadyMember(err) {
			return fmt.Errorf("deactivate role: %w", err)
		}
	}
	if err := p.revokeMemberships(ctx, role); err != nil {
		return err
	}
	for _, db := range dbs {
		if err := p.resetIn(ctx, db, role); err != nil {
			return err
		}
	}
	return nil
}

// resetIn runs resetDirectSQL for role in database, serialized with the
// provisioning transactions there (in this process; a conflict with
// another instance's is retried, as in applyLocked).
func (p *Provisioner) resetIn(ctx context.Context, database, role string) error {
	unlock, err := p.lockDatabase(ctx, database)
	if err != nil {
		return err
	}
	defer unlock()
	for attempt := 1; ; attempt++ {
		err := p.execIn(ctx, database, resetDirectSQL(role))
		if err == nil || attempt == maxApplyAttempts || !isConflict(err) {
			return err
		}
		if err := sleepCtx(ctx, conflictBackoff(attempt)); err != nil {
			return err
		}
	}
}

// revokeMemberships revokes every role membership of role, one REVOKE at a
// time on the admin database.
func (p *Provisioner) revokeMemberships(ctx context.Context, role string) error {
	rows, err := p.admin.Query(ctx, membershipsSQL, role)
	if err != nil {
		return fmt.Errorf("list memberships: %w", err)
	}
	groups, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("list memberships: %w", err)
	}
	for _, g := range groups {
		if err := p.execIn(ctx, p.adminDB, "REVOKE "+quoteIdent(g)+" FROM "+quoteIdent(role)); err != nil {
			return err
		}
	}
	return nil
}

// isAlreadyMember reports whether err is PostgreSQL's refusal to grant a
// membership the member already has (PostgreSQL 16+ is silent about it,
// 15 only notices; kept for safety).
func isAlreadyMember(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == sqlstateDuplicateObject
}

// forgetLeasesSQL deletes lease rows of role names that do not exist and
// are not held: names locked as a clash alternative, and roles dropped.
const forgetLeasesSQL = `DELETE FROM ` + leaseTable + ` w
 WHERE w.held_until < now() AND NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = w.role)`

// forgetLeases runs forgetLeasesSQL; a failure is only logged.
func (p *Provisioner) forgetLeases(ctx context.Context) {
	if _, err := p.admin.Exec(ctx, forgetLeasesSQL); err != nil && ctx.Err() == nil {
		p.log.Warn("cleanup: could not delete unused lease rows", "err", err)
	}
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

// recheck re-reads, under the role's lock, whether role is still a cleanup
// candidate, still owned by rec's identity and not in use: sql returns
// (candidate, in_use, owner record) for the role $1, given args as $2....
// clean is true only when all three hold; active is true when the role is
// in use. A role that is gone or changed gives clean=false without error.
func recheck(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, sql, role string, rec ownerRecord, args ...any) (clean, active bool, err error) {
	var candidate, inUse bool
	var record string
	err = q.QueryRow(ctx, sql, append([]any{role}, args...)...).Scan(&candidate, &inUse, &record)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("recheck: %w", err)
	}
	if cur, ours := parseRecord(record); !ours || !cur.sameOwner(rec) || !candidate {
		return false, false, nil
	}
	return !inUse, inUse, nil
}
