package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// CockroachDB cleanup, touch, try-lock and privilege reset. Verified only
// against the scripted fake in crdb_test.go (statements recorded), not a
// real server.
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
	// crdbTouchSQL records the roles $1 as used now.
	crdbTouchSQL = `UPDATE ` + crdbLockTable + ` SET last_used = now() WHERE role = ANY($1::STRING[])`
)

// crdbGrantsSQL lists the objects role holds privileges on in the current
// database, for crdbRevokeDirect. (SHOW takes no placeholders.)
func crdbGrantsSQL(role string) string {
	return `SELECT DISTINCT object_type, database_name, coalesce(schema_name, ''), coalesce(object_name, '')
  FROM [SHOW GRANTS FOR ` + quoteIdent(role) + `] WHERE grantee = ` + quoteLiteral(role) + ` ORDER BY 1, 2, 3, 4`
}

// dropRoleCRDB is Cleanup's per-role step on CockroachDB. Cleanup lists the
// login roles whose owner record (a row of waypoint.role_records) says they
// are Waypoint user roles and that have been idle longer than TTL; for
// each, dropRoleCRDB
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
func (p *Provisioner) dropRoleCRDB(ctx context.Context, role string, rec ownerRecord) (cleanupOutcome, error) {
	lock, ok, err := p.tryLockRole(ctx, role)
	if err != nil || !ok {
		if err == nil {
			return cleanupOutcome{state: outcomeActive}, nil
		}
		return cleanupOutcome{}, err
	}
	defer lock.unlock()
	if clean, active, err := recheck(ctx, lock.tx, crdbRecheckSQL, role, rec, p.opts.TTL.Seconds()); !clean {
		if active {
			return cleanupOutcome{state: outcomeActive}, err
		}
		return cleanupOutcome{}, err
	}
	if err := p.deactivateCRDB(ctx, role, uniq(rec.Database, p.adminDB)); err != nil {
		return cleanupOutcome{}, err
	}
	err = p.execIn(ctx, p.adminDB, "DROP ROLE "+quoteIdent(role))
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
	rec.State, rec.SQL, rec.Grant = stateInactive, "", ""
	if _, err := lock.tx.Exec(ctx, "UPSERT INTO "+crdbRecordTable+" (role, record) VALUES ($1, $2)", role, rec.String()); err != nil {
		return cleanupOutcome{}, fmt.Errorf("mark role inactive: %w", err)
	}
	return cleanupOutcome{state: outcomeDeactivated, owned: -1}, nil
}

// deactivateCRDB is deactivate on CockroachDB.
func (p *Provisioner) deactivateCRDB(ctx context.Context, role string, dbs []string) error {
	r := quoteIdent(role)
	if err := p.execIn(ctx, p.adminDB, "ALTER ROLE "+r+" WITH NOLOGIN PASSWORD NULL"); err != nil {
		return err
	}
	if err := p.revokeMemberships(ctx, role); err != nil {
		return err
	}
	for _, db := range dbs {
		pool, err := p.pool(db)
		if err != nil {
			return err
		}
		revokes, err := crdbRevokeDirect(ctx, pool, role)
		if err != nil {
			return err
		}
		if err := p.execIn(ctx, db, revokes...); err != nil {
			return err
		}
	}
	return nil
}

// crdbRevokeDirect returns the statements that revoke every privilege role
// holds in q's database (SHOW GRANTS FOR role): on the database, schemas,
// tables and sequences, types and functions.
func crdbRevokeDirect(ctx context.Context, q querier, role string) ([]string, error) {
	rows, err := q.Query(ctx, crdbGrantsSQL(role))
	if err != nil {
		return nil, backendErr("list the role's privileges", err)
	}
	var out []string
	var kind, db, schema, object string
	_, err = pgx.ForEachRow(rows, []any{&kind, &db, &schema, &object}, func() error {
		if sql := crdbRevokeSQL(kind, db, schema, object, role); sql != "" {
			out = append(out, sql)
		}
		return nil
	})
	if err != nil {
		return nil, backendErr("list the role's privileges", err)
	}
	return out, nil
}

// crdbRevokeSQL is the REVOKE ALL for one row of SHOW GRANTS FOR, or "" for
// an object type it does not know.
func crdbRevokeSQL(kind, db, schema, object, role string) string {
	target := ""
	switch strings.ToLower(kind) {
	case "database":
		target = "DATABASE " + quoteIdent(db)
	case "schema":
		target = "SCHEMA " + quoteIdent(db) + "." + quoteIdent(schema)
	case "table", "view", "materialized view":
		target = "TABLE " + quoteIdent(db) + "." + quoteIdent(schema) + "." + quoteIdent(object)
	case "sequence":
		target = "SEQUENCE " + quoteIdent(db) + "." + quoteIdent(schema) + "." + quoteIdent(object)
	case "type":
		target = "TYPE " + quoteIdent(db) + "." + quoteIdent(schema) + "." + quoteIdent(object)
	case "function", "routine":
		target = "FUNCTION " + quoteIdent(db) + "." + quoteIdent(schema) + "." + object // object carries its argument list
	default:
		return ""
	}
	return "REVOKE ALL ON " + target + " FROM " + quoteIdent(role)
}

// execIn runs statements one by one on a connection to database; a
// database that no longer exists is skipped.
func (p *Provisioner) execIn(ctx context.Context, database string, statements ...string) error {
	pool, err := p.pool(database)
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

// tryLockCRDB locks name's lock row without waiting; ok is false when
// another transaction holds it. The transaction stays open in l.tx; unlock
// commits it (keeping the record delete of a dropped role).
func (l *roleLock) tryLockCRDB(ctx context.Context, name string) (bool, error) {
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
