package provision

import (
	"context"

	"github.com/jackc/pgx/v5"
)

// CockroachDB dialect, detected from SELECT version() in New. Differences
// from PostgreSQL:
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
//     blocks); see crdbRevokeDirect.
//   - Cleanup uses lock rows (FOR UPDATE NOWAIT), the record table and
//     SHOW CLUSTER SESSIONS instead of pg_stat_activity; see dropRoleCRDB
//     for exactly what it does and does not do.
//   - No warm path: every Ensure reconciles (no DO blocks or hash functions
//     are assumed). Touch records use without role locks; Terminate is not
//     supported.
//
// The admin role needs CREATE on the admin database to create the schema
// (done once, in New).

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
)

// crdbStateSetupSQL creates the lock and record tables (setupState).
var crdbStateSetupSQL = []string{
	"CREATE TABLE IF NOT EXISTS " + crdbLockTable + " (role STRING PRIMARY KEY, last_used TIMESTAMPTZ)",
	"CREATE TABLE IF NOT EXISTS " + crdbRecordTable + " (role STRING PRIMARY KEY, record STRING NOT NULL)",
}

// crdbRecords is the qualified record table for plans, or "" on PostgreSQL.
func (p *Provisioner) crdbRecords() string {
	if !p.crdb {
		return ""
	}
	return quoteIdent(p.adminDB) + "." + crdbRecordTable
}

// lockCRDB makes sure l's lock rows exist and records their use, then
// locks them in a transaction that stays open in l.tx, and runs then in it.
func (l *roleLock) lockCRDB(ctx context.Context, then *pgx.Batch) error {
	b := &pgx.Batch{}
	for _, n := range l.names {
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
	b.Queue("SELECT role FROM "+crdbLockTable+" WHERE role = ANY($1::STRING[]) ORDER BY role FOR UPDATE", l.names)
	if then != nil {
		b.QueuedQueries = append(b.QueuedQueries, then.QueuedQueries...)
	}
	return tx.SendBatch(ctx, b).Close()
}
