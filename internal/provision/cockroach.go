package provision

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// cockroach is the CockroachDB dialect, detected from SELECT version() in
// New. Differences from PostgreSQL:
//
//   - A role lock is a row of waypoint.role_locks in the admin database,
//     locked with SELECT ... FOR UPDATE in a transaction held open until the
//     lease is released (the same schema as on PostgreSQL, owned by the
//     admin and out of every user's reach). The row also records when the
//     role was last used.
//   - No COMMENT ON ROLE. Owner records are rows of waypoint.role_records
//     in the admin database, written in the provisioning transaction
//     through a cross-database reference (admin_db.waypoint.role_records).
//   - Role options: no INHERIT/SUPERUSER keywords (roles always inherit).
//   - Changed raw SQL is reset from SHOW GRANTS FOR the role (no DO
//     blocks); see revokeDirect.
//   - Cleanup uses lock rows (FOR UPDATE NOWAIT), the record table and
//     SHOW CLUSTER SESSIONS instead of pg_stat_activity; see cleanRole
//     for exactly what it does and does not do.
//   - No warm path: every Ensure reconciles (no DO blocks or hash functions
//     are assumed). Touch records use without role locks; Terminate is not
//     supported.
//
// The admin role needs CREATE on the admin database to create the schema
// (done once, in New).
type cockroach struct {
	plan.CockroachDB
	p *Provisioner
}

const cockroachName = "CockroachDB"

func (*cockroach) String() string { return cockroachName }

// newCockroach returns the dialect for p, whose owner records live in p's
// admin database.
func newCockroach(p *Provisioner) *cockroach {
	return &cockroach{CockroachDB: plan.CockroachDB{Records: plan.QuoteIdent(p.adminDB) + "." + crdbRecordTable}, p: p}
}

const (
	crdbLockTable   = stateSchema + ".role_locks"
	crdbRecordTable = stateSchema + ".role_records"

	crdbLookupRolesSQL = `SELECT r.rolname::STRING, coalesce(w.record, ''), pg_has_role(current_user, r.oid, 'USAGE')
  FROM pg_roles r LEFT JOIN ` + crdbRecordTable + ` w ON w.role = r.rolname
 WHERE r.rolname = ANY($1::STRING[])`
	crdbLookupMembersSQL = `SELECT DISTINCT u.rolname::STRING, g.rolname::STRING, coalesce(w.record, '')
  FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
  LEFT JOIN ` + crdbRecordTable + ` w ON w.role = g.rolname
 WHERE u.rolname = ANY($1::STRING[])`
	// crdbTouchSQL records the roles $1 as used now.
	crdbTouchSQL = `UPDATE ` + crdbLockTable + ` SET last_used = now() WHERE role = ANY($1::STRING[])`
)

// sessionParams are none: New keeps its connections.
func (*cockroach) sessionParams() map[string]string { return nil }

// passwordEncryption is SCRAM: Waypoint never sends md5 verifiers to
// CockroachDB.
func (*cockroach) passwordEncryption(context.Context) (string, error) { return "scram-sha-256", nil }

// stateTables creates the lock and record tables.
func (*cockroach) stateTables() []string {
	return []string{
		"CREATE TABLE IF NOT EXISTS " + crdbLockTable + " (role STRING PRIMARY KEY, last_used TIMESTAMPTZ)",
		"CREATE TABLE IF NOT EXISTS " + crdbRecordTable + " (role STRING PRIMARY KEY, record STRING NOT NULL)",
	}
}

// createUsersGroup creates the group without a record: it is never looked
// up by record.
func (*cockroach) createUsersGroup(name string) []string {
	return []string{"CREATE ROLE " + plan.QuoteIdent(name) + " NOLOGIN"}
}

func (*cockroach) lookupSQL() (roles, members string) {
	return crdbLookupRolesSQL, crdbLookupMembersSQL
}

func (*cockroach) touchSQL() string { return crdbTouchSQL }

func (*cockroach) terminateSQL() (string, error) {
	return "", errors.New("terminating a session is not supported on CockroachDB")
}

// listRevokes lists what ResetDirect must revoke from pl.Role in
// pl.Database (CockroachDB has no DO blocks).
func (d *cockroach) listRevokes(ctx context.Context, pl *plan.Plan) ([]string, error) {
	pool, err := d.p.workPool(pl.Database)
	if err != nil {
		return nil, err
	}
	return revokeDirect(ctx, pool, pl.Role)
}

// rowLock is the CockroachDB roleLock: rows of crdbLockTable locked with
// SELECT ... FOR UPDATE in a transaction that stays open on conn until
// unlock.
type rowLock struct {
	conn   *pgxpool.Conn // the connection holding tx
	tx     pgx.Tx        // the transaction holding the lock rows
	commit bool          // unlock commits tx (Cleanup's changes) instead of rolling it back
}

// lockRoles makes sure the lock rows of names exist and records their use,
// then locks them in a transaction that stays open in the returned lock,
// and runs then in it. A lock_not_available error (a lock_timeout set on
// the server) means another holder has a row.
func (d *cockroach) lockRoles(ctx context.Context, names []string, then *pgx.Batch) (roleLock, error) {
	conn, err := d.p.adminPool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	l := &rowLock{conn: conn}
	if err := l.lock(ctx, names, then); err != nil {
		l.discard()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == sqlstateLockNotAvailable {
			return nil, fmt.Errorf("%w: %w", errLockHeld, err)
		}
		return nil, err
	}
	return l, nil
}

func (l *rowLock) lock(ctx context.Context, names []string, then *pgx.Batch) error {
	b := &pgx.Batch{}
	for _, n := range names {
		b.Queue("UPSERT INTO "+crdbLockTable+" (role, last_used) VALUES ($1, now())", n)
	}
	if err := l.conn.SendBatch(ctx, b).Close(); err != nil {
		return err
	}
	tx, err := l.conn.Begin(ctx)
	if err != nil {
		return err
	}
	l.tx = tx
	b = &pgx.Batch{}
	b.Queue("SELECT role FROM "+crdbLockTable+" WHERE role = ANY($1::STRING[]) ORDER BY role FOR UPDATE", names)
	b.QueuedQueries = append(b.QueuedQueries, then.QueuedQueries...)
	return tx.SendBatch(ctx, b).Close()
}

// unlock ends the transaction holding the rows; a connection that cannot
// be cleaned is closed, which drops its locks.
func (l *rowLock) unlock() {
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	var err error
	if l.commit {
		err = l.tx.Commit(ctx)
	} else {
		err = l.tx.Rollback(ctx)
	}
	if err != nil {
		l.discard()
		return
	}
	l.conn.Release()
}

// discard closes the lock connection (dropping its locks) and gives the
// slot back to the pool.
func (l *rowLock) discard() {
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	_ = l.conn.Conn().Close(ctx)
	l.conn.Release()
}
