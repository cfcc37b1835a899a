package provision

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/waypoint-proxy/waypoint/internal/ctxtime"
	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// pgExpiredRolesSQL lists roles with the prefix $1 that are candidates for
// cleanup, with their comments (owner records): login roles whose last use
// (or, for roles from before last use was recorded, VALID UNTIL) is more
// than $2 seconds ago, and NOLOGIN roles that own nothing.
const pgExpiredRolesSQL = `SELECT r.rolname::text, coalesce(shobj_description(r.oid, 'pg_authid'), '')
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

// pgRecheckSQL re-reads role $1 under its lease: still a candidate (TTL $2
// seconds), whether any session of it is open, its owner record.
const pgRecheckSQL = `SELECT ` + idleSQL + `,
       EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.usename = r.rolname),
       coalesce(shobj_description(r.oid, 'pg_authid'), '')
  FROM pg_roles r LEFT JOIN ` + leaseTable + ` w ON w.role = r.rolname WHERE r.rolname = $1`

// dependenciesSQL lists what role $1 has in each database (dbid 0: shared
// objects): the number of objects it owns and the database name.
const dependenciesSQL = `SELECT coalesce(d.datname::text, ''), count(*) FILTER (WHERE s.deptype = 'o')
  FROM pg_shdepend s LEFT JOIN pg_database d ON d.oid = s.dbid
 WHERE s.refclassid = 'pg_authid'::regclass AND s.refobjid = (SELECT oid FROM pg_roles WHERE rolname = $1)
 GROUP BY 1 ORDER BY 1`

func (*postgres) expiredRolesSQL() string { return pgExpiredRolesSQL }

// afterCleanup forgets unused lease rows.
func (d *postgres) afterCleanup(ctx context.Context) { d.forgetLeases(ctx) }

// cleanRole cleans up one candidate under its lease (see Cleanup).
func (d *postgres) cleanRole(ctx context.Context, role string, rec plan.Record) (cleanupOutcome, error) {
	lock, ok, err := d.tryLease(ctx, role)
	if out, locked, err := lockedForCleanup(ok, err); !locked {
		return out, err
	}
	defer lock.unlock()
	if out, clean, err := recheck(ctx, d.p.adminPool, pgRecheckSQL, role, rec, d.p.opts.TTL.Seconds()); !clean {
		return out, err
	}
	owned, dbs, err := d.dependencies(ctx, role, rec.Database)
	if err != nil {
		return cleanupOutcome{}, err
	}
	if err := d.deactivate(ctx, role, dbs); err != nil {
		return cleanupOutcome{}, err
	}
	p := d.p
	if owned == 0 {
		_, err := p.adminPool.Exec(ctx, "DROP ROLE "+plan.QuoteIdent(role))
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
	rec.State, rec.SQL, rec.Grant = plan.StateInactive, "", ""
	if _, err := p.adminPool.Exec(ctx, d.SetRecord(role, rec)); err != nil {
		return cleanupOutcome{}, fmt.Errorf("mark role inactive: %w", err)
	}
	return cleanupOutcome{state: outcomeDeactivated, owned: owned}, nil
}

// dependencies returns how many objects role owns (in every database) and
// the databases where it owns objects or holds privileges, with home (its
// own database) first.
func (d *postgres) dependencies(ctx context.Context, role, home string) (owned int64, dbs []string, err error) {
	rows, err := d.p.adminPool.Query(ctx, dependenciesSQL, role)
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
func (d *postgres) deactivate(ctx context.Context, role string, dbs []string) error {
	p, r := d.p, plan.QuoteIdent(role)
	// The admin must be a member to revoke privileges the role's own
	// objects were granted with and to alter its default privileges.
	for _, sql := range []string{"ALTER ROLE " + r + " WITH NOLOGIN PASSWORD NULL", "GRANT " + r + " TO CURRENT_USER"} {
		if _, err := p.adminPool.Exec(ctx, sql); err != nil && !isAlreadyMember(err) {
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

// resetIn runs plan.ResetDirectSQL for role in database, serialized with
// the provisioning transactions there (in this process; a conflict with
// another instance's is retried, as in applyLocked).
func (p *Provisioner) resetIn(ctx context.Context, database, role string) error {
	leave, err := p.takeTurn(ctx, database)
	if err != nil {
		return err
	}
	defer leave()
	for attempt := 1; ; attempt++ {
		err := p.execIn(ctx, database, plan.ResetDirectSQL(role))
		if err == nil || attempt == maxApplyAttempts || !isConflict(err) {
			return err
		}
		if err := ctxtime.Sleep(ctx, conflictBackoff(attempt)); err != nil {
			return err
		}
	}
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
func (d *postgres) forgetLeases(ctx context.Context) {
	if _, err := d.p.adminPool.Exec(ctx, forgetLeasesSQL); err != nil && ctx.Err() == nil {
		d.p.log.Warn("cleanup: could not delete unused lease rows", "err", err)
	}
}
