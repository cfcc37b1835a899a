package provision

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// CockroachDB cleanup, try-lock and privilege reset. Verified only against
// the scripted fake in crdb_test.go (each scenario lists the statements it
// expects), not a real server.
const (
	// crdbExpiredRolesSQL lists login roles with the prefix $1 and a record
	// whose last use (or, without one, VALID UNTIL) is more than $2 seconds
	// ago.
	crdbExpiredRolesSQL = `SELECT r.rolname::STRING, w.record FROM pg_roles r JOIN ` + crdbRecordTable + ` w ON w.role = r.rolname
  LEFT JOIN ` + crdbLockTable + ` l ON l.role = r.rolname
 WHERE r.rolcanlogin AND substring(r.rolname, 1, length($1::STRING)) = $1::STRING
   AND coalesce(l.last_used + $2::FLOAT8 * interval '1 second' < now(), r.rolvaliduntil < now()) ORDER BY 1`
	// crdbRecheckSQL re-reads one role under its lock row: still idle
	// (TTL $2 seconds), whether it has an open session anywhere in the
	// cluster, its record.
	crdbRecheckSQL = `SELECT coalesce(l.last_used + $2::FLOAT8 * interval '1 second' < now(), r.rolvaliduntil < now()),
       EXISTS (SELECT 1 FROM [SHOW CLUSTER SESSIONS] s WHERE s.user_name = r.rolname),
       coalesce(w.record, '')
  FROM pg_roles r LEFT JOIN ` + crdbRecordTable + ` w ON w.role = r.rolname
  LEFT JOIN ` + crdbLockTable + ` l ON l.role = r.rolname WHERE r.rolname = $1`
)

// crdbGrantsSQL lists the objects role holds privileges on in the current
// database, for revokeDirect. (SHOW takes no placeholders.)
func crdbGrantsSQL(role string) string {
	return `SELECT DISTINCT object_type, database_name, coalesce(schema_name, ''), coalesce(object_name, '')
  FROM [SHOW GRANTS FOR ` + plan.QuoteIdent(role) + `] WHERE grantee = ` + plan.QuoteLiteral(role) + ` ORDER BY 1, 2, 3, 4`
}

func (*cockroach) expiredRolesSQL() string { return crdbExpiredRolesSQL }

// afterCleanup does nothing: lock rows are kept (they record last use).
func (*cockroach) afterCleanup(context.Context) {}

// cleanRole is Cleanup's per-role step on CockroachDB. Cleanup lists the
// login roles whose owner record (a row of waypoint.role_records) says they
// are Waypoint user roles and that have been idle longer than TTL; for
// each, cleanRole
//
//   - try-locks the role's lock row (SELECT ... FOR UPDATE NOWAIT in a
//     transaction on a lock connection; a role an Ensure holds is skipped);
//   - re-reads the role under that lock and skips it unless it is still
//     idle, still the same identity's, and has no session in SHOW CLUSTER
//     SESSIONS (any node of the cluster);
//   - deactivates it: NOLOGIN without a password, every role membership
//     revoked, every privilege SHOW GRANTS FOR lists revoked in the role's
//     database and in the admin database;
//   - DROP ROLE; when CockroachDB refuses because the role still owns
//     objects, it stays deactivated and its record is marked inactive
//     (objects are never reassigned to the admin); otherwise its record row
//     is deleted.
func (d *cockroach) cleanRole(ctx context.Context, role string, rec plan.Record) (cleanupOutcome, error) {
	p := d.p
	lock, ok, err := d.tryLock(ctx, role)
	if out, locked, err := lockedForCleanup(ok, err); !locked {
		return out, err
	}
	defer lock.unlock()
	if out, clean, err := recheck(ctx, lock.tx, crdbRecheckSQL, role, rec, p.opts.TTL.Seconds()); !clean {
		return out, err
	}
	if err := d.deactivate(ctx, role, uniq(rec.Database, p.adminDB)); err != nil {
		return cleanupOutcome{}, err
	}
	err = p.execIn(ctx, p.adminDB, "DROP ROLE "+plan.QuoteIdent(role))
	var pgErr *pgconn.PgError
	if err != nil && (!errors.As(err, &pgErr) || pgErr.Code != sqlstateDependentObjects) {
		return cleanupOutcome{}, err
	}
	if err == nil {
		if _, err := lock.tx.Exec(ctx, "DELETE FROM "+crdbRecordTable+" WHERE role = $1", role); err != nil {
			return cleanupOutcome{}, fmt.Errorf("delete owner record: %w", err)
		}
		return cleanupOutcome{state: outcomeDropped}, nil
	}
	rec.State, rec.SQL, rec.Grant = plan.StateInactive, "", ""
	if _, err := lock.tx.Exec(ctx, "UPSERT INTO "+crdbRecordTable+" (role, record) VALUES ($1, $2)", role, rec.String()); err != nil {
		return cleanupOutcome{}, fmt.Errorf("mark role inactive: %w", err)
	}
	return cleanupOutcome{state: outcomeDeactivated, owned: -1}, nil
}

// deactivate makes role unable to log in or to use anything but its own
// objects: NOLOGIN without a password, no role memberships, and no
// privilege SHOW GRANTS lists in dbs.
func (d *cockroach) deactivate(ctx context.Context, role string, dbs []string) error {
	p, r := d.p, plan.QuoteIdent(role)
	if err := p.execIn(ctx, p.adminDB, "ALTER ROLE "+r+" WITH NOLOGIN PASSWORD NULL"); err != nil {
		return err
	}
	if err := p.revokeMemberships(ctx, role); err != nil {
		return err
	}
	for _, db := range dbs {
		pool, err := p.workPool(db)
		if err != nil {
			return err
		}
		revokes, err := revokeDirect(ctx, pool, role)
		if err != nil {
			return err
		}
		if err := p.execIn(ctx, db, revokes...); err != nil {
			return err
		}
	}
	return nil
}

// revokeDirect returns the statements that revoke every privilege role
// holds in q's database (SHOW GRANTS FOR role): on the database, schemas,
// tables and sequences, types and functions.
func revokeDirect(ctx context.Context, q querier, role string) ([]string, error) {
	rows, err := q.Query(ctx, crdbGrantsSQL(role))
	if err != nil {
		return nil, backendErr("list the role's privileges", err)
	}
	var out []string
	var kind, db, schema, object string
	_, err = pgx.ForEachRow(rows, []any{&kind, &db, &schema, &object}, func() error {
		if sql := plan.CockroachRevokeSQL(kind, db, schema, object, role); sql != "" {
			out = append(out, sql)
		}
		return nil
	})
	if err != nil {
		return nil, backendErr("list the role's privileges", err)
	}
	return out, nil
}

// tryLock locks name's lock row without waiting and without marking it
// used; ok is false when another transaction holds it. The transaction
// stays open in the lock; unlock commits it (keeping the record delete of
// a dropped role).
func (d *cockroach) tryLock(ctx context.Context, name string) (l *rowLock, ok bool, err error) {
	conn, err := d.p.adminPool.Acquire(ctx)
	if err != nil {
		return nil, false, backendErr("acquire admin connection", err)
	}
	l = &rowLock{conn: conn}
	ok, err = l.tryLock(ctx, name)
	if err != nil || !ok {
		l.discard()
		if err != nil {
			return nil, false, backendErr("lock role", err)
		}
		return nil, false, nil
	}
	return l, true, nil
}

func (l *rowLock) tryLock(ctx context.Context, name string) (bool, error) {
	if _, err := l.conn.Exec(ctx, "INSERT INTO "+crdbLockTable+" (role) VALUES ($1) ON CONFLICT DO NOTHING", name); err != nil {
		return false, err
	}
	tx, err := l.conn.Begin(ctx)
	if err != nil {
		return false, err
	}
	_, err = tx.Exec(ctx, "SELECT role FROM "+crdbLockTable+" WHERE role = $1 FOR UPDATE NOWAIT", name)
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == sqlstateLockNotAvailable {
		_ = tx.Rollback(ctx)
		return false, nil
	}
	if err != nil {
		_ = tx.Rollback(ctx)
		return false, err
	}
	l.tx, l.commit = tx, true
	return true, nil
}

// uniq returns a and b, or just b when they are equal or a is "".
func uniq(a, b string) []string {
	if a == b || a == "" {
		return []string{b}
	}
	return []string{a, b}
}
