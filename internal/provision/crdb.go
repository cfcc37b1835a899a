package provision

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// CockroachDB dialect, detected from SELECT version() in New. Differences
// from PostgreSQL:
//
//   - No advisory locks. A role lock is a row of waypoint_role_locks in the
//     admin database, locked with SELECT ... FOR UPDATE in a transaction
//     held open until the lease is released. Provisioning transactions
//     need no per-database lock: CockroachDB transactions are serializable
//     and a conflicting one is retried (isConflict, SQLSTATE 40001).
//   - No COMMENT ON ROLE. Owner records are rows of waypoint_roles in the
//     admin database, written in the provisioning transaction through a
//     cross-database reference (admin_db.public.waypoint_roles).
//   - Role options: no INHERIT/SUPERUSER keywords (roles always inherit).
//   - Changed raw SQL is not reset (no DO blocks); privileges from removed
//     raw SQL stay until the role is dropped.
//   - Cleanup uses lock rows (FOR UPDATE NOWAIT), the record table and
//     SHOW CLUSTER SESSIONS instead of pg_stat_activity; see dropRoleCRDB
//     for exactly what it does and does not do.
//   - No warm path: every Ensure reconciles (no DO blocks or hash functions
//     are assumed). Touch sets VALID UNTIL without role locks; Terminate is
//     not supported.
//
// The admin role needs CREATE on the admin database's public schema to
// create the two tables (done once, in New).

const (
	crdbLockTable   = "waypoint_role_locks"
	crdbRecordTable = "waypoint_roles"

	crdbLookupRolesSQL = `SELECT r.rolname::STRING, coalesce(w.record, ''), pg_has_role(current_user, r.oid, 'USAGE')
  FROM pg_roles r LEFT JOIN ` + crdbRecordTable + ` w ON w.role = r.rolname
 WHERE r.rolname = ANY($1::STRING[])`
	crdbLookupMembersSQL = `SELECT DISTINCT u.rolname::STRING, g.rolname::STRING, coalesce(w.record, '')
  FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
  LEFT JOIN ` + crdbRecordTable + ` w ON w.role = g.rolname
 WHERE u.rolname = ANY($1::STRING[])`
)

// crdbSetup creates the lock and record tables in the admin database.
func (p *Provisioner) crdbSetup(ctx context.Context) error {
	b := &pgx.Batch{}
	b.Queue("CREATE TABLE IF NOT EXISTS " + crdbLockTable + " (role STRING PRIMARY KEY)")
	b.Queue("CREATE TABLE IF NOT EXISTS " + crdbRecordTable + " (role STRING PRIMARY KEY, record STRING NOT NULL)")
	if err := p.locks.SendBatch(ctx, b).Close(); err != nil {
		return backendErr("create CockroachDB lock and record tables in the admin database", err)
	}
	return nil
}

// crdbRecords is the qualified record table for plans, or "" on PostgreSQL.
func (p *Provisioner) crdbRecords() string {
	if !p.crdb {
		return ""
	}
	return quoteIdent(p.adminDB) + ".public." + crdbRecordTable
}

func (l *roleLock) lockCRDB(ctx context.Context, names []string, then *pgx.Batch) error {
	b := &pgx.Batch{}
	for _, n := range names {
		b.Queue("INSERT INTO "+crdbLockTable+" (role) VALUES ($1) ON CONFLICT DO NOTHING", n)
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
	if then != nil {
		b.QueuedQueries = append(b.QueuedQueries, then.QueuedQueries...)
	}
	return tx.SendBatch(ctx, b).Close()
}
