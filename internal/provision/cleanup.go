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
	Dropped       []string // roles dropped
	SkippedActive []string // expired roles kept: a session or a lease still uses them
	Errors        int      // roles that could not be dropped (logged; retried next pass)
}

// expiredRolesSQL lists login roles with the prefix whose VALID UNTIL has
// passed, with their comments (owner records).
const expiredRolesSQL = `SELECT r.rolname::text, coalesce(shobj_description(r.oid, 'pg_authid'), '')
  FROM pg_roles r
 WHERE starts_with(r.rolname, $1) AND r.rolcanlogin AND r.rolvaliduntil < now()
 ORDER BY 1`

// recheckSQL re-reads one role under its lock: still expired, and whether
// any session of it is open.
const recheckSQL = `SELECT r.rolvaliduntil < now(),
       EXISTS (SELECT 1 FROM pg_stat_activity a WHERE a.usename = r.rolname),
       coalesce(shobj_description(r.oid, 'pg_authid'), '')
  FROM pg_roles r WHERE r.rolname = $1`

// Cleanup runs one pass: it drops every role with the prefix that carries a
// Waypoint user owner record, whose VALID UNTIL has passed (no Ensure for
// longer than TTL) and that has no session in pg_stat_activity (PostgreSQL
// lets DROP ROLE succeed under an open session, which then breaks).
//
// Each role is dropped under its role lock (skipped if an Ensure holds it):
// GRANT role TO admin (needed to REASSIGN/DROP OWNED as a non-superuser),
// then in the role's database and in the admin database REASSIGN OWNED BY
// role TO admin and DROP OWNED BY role, then DROP ROLE. Objects the role
// created are kept, owned by the admin. Group roles are never dropped. The
// error is non-nil only when the pass could not run at all. On CockroachDB
// see dropRoleCRDB for what differs.
func (p *Provisioner) Cleanup(ctx context.Context) (CleanupResult, error) {
	p.stats.cleanupRuns.Add(1)
	var res CleanupResult
	query, args, drop := expiredRolesSQL, []any{p.opts.Prefix}, p.dropRole
	if p.crdb {
		query, args, drop = crdbExpiredRolesSQL, nil, p.dropRoleCRDB
	} else {
		p.waitUnlocks(ctx) // a role released just now is not "in use"
	}
	cands, err := p.expiredRoles(ctx, query, args...)
	if err != nil {
		return res, err
	}
	for _, c := range cands {
		dropped, active, err := drop(ctx, c.name, c.rec)
		p.countCleanup(&res, c.name, c.rec, dropped, active, err)
		if ctx.Err() != nil {
			return res, backendErr("cleanup", ctx.Err())
		}
	}
	return res, nil
}

// expiredRole is a role Cleanup may drop: expired, with this prefix and a
// Waypoint user owner record.
type expiredRole struct {
	name string
	rec  ownerRecord
}

// expiredRoles runs query, which returns (role name, owner record) of login
// roles whose VALID UNTIL has passed, and keeps the Waypoint user roles with
// this provisioner's prefix.
func (p *Provisioner) expiredRoles(ctx context.Context, query string, args ...any) ([]expiredRole, error) {
	rows, err := p.locks.Query(ctx, query, args...)
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
func (p *Provisioner) countCleanup(res *CleanupResult, role string, rec ownerRecord, dropped, active bool, err error) {
	switch {
	case err != nil:
		res.Errors++
		p.stats.cleanupErrors.Add(1)
		p.log.Warn("cleanup: drop role failed", "role", role, "err", err)
	case active:
		res.SkippedActive = append(res.SkippedActive, role)
		p.stats.skippedActive.Add(1)
	case dropped:
		res.Dropped = append(res.Dropped, role)
		p.stats.rolesDropped.Add(1)
		p.log.Info("cleanup: dropped role", "role", role, "subject", rec.Subject, "database", rec.Database)
	}
}

// dropRole drops one expired role under its lock. active is true when the
// role is in use (a lease or a session); dropped is false without error when
// the role changed meanwhile (renewed or gone).
func (p *Provisioner) dropRole(ctx context.Context, role string, rec ownerRecord) (dropped, active bool, err error) {
	lock, ok, err := p.tryLockRole(ctx, role)
	if err != nil || !ok {
		return false, err == nil, err
	}
	defer lock.unlock()
	if drop, active, err := recheck(ctx, lock.conn, recheckSQL, role, rec); !drop {
		return false, active, err
	}
	if _, err := lock.conn.Exec(ctx, "GRANT "+quoteIdent(role)+" TO CURRENT_USER"); err != nil {
		return false, false, fmt.Errorf("grant role to admin: %w", err)
	}
	for _, db := range uniq(rec.Database, p.adminDB) {
		if err := p.dropOwned(ctx, db, role); err != nil {
			return false, false, err
		}
	}
	if _, err := lock.conn.Exec(ctx, "DROP ROLE "+quoteIdent(role)); err != nil {
		return false, false, fmt.Errorf("drop role: %w", err)
	}
	return true, false, nil
}

// dropOwned reassigns the role's objects to the admin and drops its
// privileges in database; a database that no longer exists is skipped.
func (p *Provisioner) dropOwned(ctx context.Context, database, role string) error {
	pool, err := p.pool(database)
	if err != nil {
		return err
	}
	r := quoteIdent(role)
	err = pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		for _, sql := range []string{
			fmt.Sprintf("SELECT pg_advisory_xact_lock(%d)", dbLockKey),
			"REASSIGN OWNED BY " + r + " TO CURRENT_USER",
			"DROP OWNED BY " + r,
		} {
			if _, err := tx.Exec(ctx, sql); err != nil {
				return err
			}
		}
		return nil
	})
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == sqlstateInvalidCatalogName {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reassign/drop owned in %s: %w", database, err)
	}
	return nil
}

func uniq(a, b string) []string {
	if a == b || a == "" {
		return []string{b}
	}
	return []string{a, b}
}

// RunCleanup runs Cleanup now and then every interval until ctx is done.
// Each pass is bounded by interval (or a minute, if longer). Results go to
// the logger and the counters.
func (p *Provisioner) RunCleanup(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = 5 * time.Minute
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		pass, cancel := context.WithTimeout(ctx, max(interval, time.Minute))
		res, err := p.Cleanup(pass)
		cancel()
		if err != nil && ctx.Err() == nil {
			p.log.Warn("cleanup pass failed", "err", err)
		} else if len(res.Dropped)+len(res.SkippedActive)+res.Errors > 0 {
			p.log.Info("cleanup pass", "dropped", len(res.Dropped), "skipped_active", len(res.SkippedActive), "errors", res.Errors)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// recheck re-reads, under the role's lock, whether role is still expired,
// still owned by rec's identity and not in use: sql returns (expired, in_use,
// owner record) for the role. drop is true only when all three hold; active
// is true when the role is in use. A role that is gone or changed gives
// drop=false without error.
func recheck(ctx context.Context, q interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}, sql, role string, rec ownerRecord) (drop, active bool, err error) {
	var expired, inUse bool
	var record string
	err = q.QueryRow(ctx, sql, role).Scan(&expired, &inUse, &record)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, false, nil
	}
	if err != nil {
		return false, false, fmt.Errorf("recheck: %w", err)
	}
	if cur, ours := parseRecord(record); !ours || !cur.sameOwner(rec) || !expired {
		return false, false, nil
	}
	return !inUse, inUse, nil
}
