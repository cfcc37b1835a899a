package provision

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// CockroachDB cleanup, touch and try-lock. Verified only against the
// scripted fake in crdb_test.go (statements recorded), not a real server.
const (
	// crdbExpiredRolesSQL lists login roles with a record whose VALID UNTIL
	// (pg_roles.rolvaliduntil, from system.role_options) has passed.
	crdbExpiredRolesSQL = `SELECT r.rolname::STRING, w.record FROM pg_roles r JOIN ` + crdbRecordTable + ` w ON w.role = r.rolname
 WHERE r.rolcanlogin AND r.rolvaliduntil < now() ORDER BY 1`
	// crdbRecheckSQL re-reads one role under its lock row: still expired,
	// whether it has an open session anywhere in the cluster, its record.
	crdbRecheckSQL = `SELECT r.rolvaliduntil < now(),
       EXISTS (SELECT 1 FROM [SHOW CLUSTER SESSIONS] s WHERE s.user_name = r.rolname),
       coalesce(w.record, '')
  FROM pg_roles r LEFT JOIN ` + crdbRecordTable + ` w ON w.role = r.rolname WHERE r.rolname = $1`
	// crdbLiveRolesSQL filters Touch's roles to Waypoint user roles.
	crdbLiveRolesSQL = `SELECT r.rolname::STRING FROM pg_roles r JOIN ` + crdbRecordTable + ` w ON w.role = r.rolname
 WHERE r.rolname = ANY($1::STRING[]) AND r.rolcanlogin AND w.record LIKE '` + userRecordPrefix + `%'`

	sqlstateLockNotAvailable = "55P03"
)

// dropRoleCRDB is Cleanup's per-role step on CockroachDB. Cleanup lists the
// login roles with this prefix whose owner record (a row of waypoint_roles)
// says they are Waypoint user roles and whose VALID UNTIL has passed
// (crdbExpiredRolesSQL); for each, dropRoleCRDB
//
//   - try-locks the role's lock row (SELECT ... FOR UPDATE NOWAIT in a
//     transaction on a lock connection; a role an Ensure holds is skipped);
//   - re-reads the role under that lock and skips it unless it is still
//     expired, still the same identity's, and has no session in SHOW
//     CLUSTER SESSIONS (any node of the cluster);
//   - runs REASSIGN OWNED BY role TO <admin> and DROP OWNED BY role in the
//     role's database and in the admin database (CockroachDB scopes both to
//     the current database, like PostgreSQL);
//   - DROP ROLE, then deletes the role's record row.
//
// It does not: GRANT the role to the admin first (CockroachDB lets a
// CREATEROLE admin reassign and drop objects of roles it manages; the
// PostgreSQL path needs the membership); drop group roles (as on
// PostgreSQL); clean lock rows of waypoint_role_locks (one short row per
// role name ever provisioned, reused if the name comes back); revoke
// privileges the role holds in databases other than its own and the admin
// database (DROP ROLE then fails, the role is counted in Errors and kept).
// Whether SHOW CLUSTER SESSIONS lists closed sessions depends on the
// CockroachDB version; if it does, such a role is kept (fails safe).
func (p *Provisioner) dropRoleCRDB(ctx context.Context, role string, rec ownerRecord) (dropped, active bool, err error) {
	lock, ok, err := p.tryLockRole(ctx, role)
	if err != nil || !ok {
		return false, err == nil, err
	}
	defer lock.unlock()
	if drop, active, err := recheck(ctx, lock.tx, crdbRecheckSQL, role, rec); !drop {
		return false, active, err
	}
	r, admin := quoteIdent(role), quoteIdent(p.baseConfig.ConnConfig.User)
	for _, db := range uniq(rec.Database, p.adminDB) {
		if err := p.execIn(ctx, db, "REASSIGN OWNED BY "+r+" TO "+admin, "DROP OWNED BY "+r); err != nil {
			return false, false, err
		}
	}
	if err := p.execIn(ctx, p.adminDB, "DROP ROLE "+r); err != nil {
		return false, false, err
	}
	if _, err := lock.tx.Exec(ctx, "DELETE FROM "+crdbRecordTable+" WHERE role = $1", role); err != nil {
		return false, false, fmt.Errorf("delete owner record: %w", err)
	}
	return true, false, nil
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

// touchCRDB is Touch on CockroachDB (no DO blocks): one query selects the
// Waypoint user roles among names, one pipeline sets VALID UNTIL on them to
// now()+TTL by the server clock as estimated from the last lookup. It does
// not take role locks; CockroachDB retries conflicting implicit
// transactions itself.
func (p *Provisioner) touchCRDB(ctx context.Context, names []string) error {
	rows, err := p.locks.Query(ctx, crdbLiveRolesSQL, names)
	if err != nil {
		return backendErr("look up roles to touch", err)
	}
	ours, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return backendErr("look up roles to touch", err)
	}
	if len(ours) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	until := quoteLiteral(p.validUntil())
	for _, r := range ours {
		b.Queue("ALTER ROLE " + quoteIdent(r) + " VALID UNTIL " + until)
	}
	if err := p.locks.SendBatch(ctx, b).Close(); err != nil {
		return backendErr("push VALID UNTIL forward", err)
	}
	p.stats.touched.Add(int64(len(ours)))
	return nil
}
