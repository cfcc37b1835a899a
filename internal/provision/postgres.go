package provision

import (
	"context"
	"fmt"

	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// postgres is the PostgreSQL dialect:
//
//   - owner records are role comments (COMMENT ON ROLE);
//   - a role lock is a lease: rows of leaseTable naming a holder until a
//     time, taken and released in short transactions (see leaseLock);
//   - use is recorded in leaseTable's last_used;
//   - Cleanup reads pg_stat_activity and pg_shdepend and revokes with
//     DO blocks (plan.ResetDirectSQL);
//   - a reconnect may take the warm path (postgres_warm.go).
type postgres struct {
	plan.PostgreSQL
	p *Provisioner
}

const postgresName = "PostgreSQL"

func (*postgres) String() string { return postgresName }

// sessionParams make every admin connection resolve unqualified names in
// pg_catalog only and wait at most adminLockTimeout for any lock. Callers
// with the admin preset may create functions in the schemas they are
// granted; were those schemas on the admin's search_path, an overload there
// matching an argument type better than pg_catalog's (CVE-2018-1058) would
// run with the admin's CREATEROLE during provisioning. Raw SQL in grants
// must therefore schema-qualify objects.
func (*postgres) sessionParams() map[string]string {
	return map[string]string{
		"search_path":  "pg_catalog",
		"lock_timeout": fmt.Sprintf("%dms", adminLockTimeout.Milliseconds()),
	}
}

func (d *postgres) passwordEncryption(ctx context.Context) (string, error) {
	var enc string
	err := d.p.adminPool.QueryRow(ctx, "SHOW password_encryption").Scan(&enc)
	return enc, err
}

func (*postgres) stateTables() []string { return []string{leaseTableSQL} }

func (*postgres) createUsersGroup(name string) []string {
	return []string{
		"CREATE ROLE " + plan.QuoteIdent(name) + " NOLOGIN",
		"COMMENT ON ROLE " + plan.QuoteIdent(name) + " IS " + plan.QuoteLiteral(plan.UsersRecord),
	}
}

const (
	lookupRolesSQL = `SELECT r.rolname::text, coalesce(shobj_description(r.oid, 'pg_authid'), ''),
       pg_has_role(current_user, r.oid, 'USAGE')
  FROM pg_roles r WHERE r.rolname = ANY($1::text[])`
	lookupMembersSQL = `SELECT DISTINCT u.rolname::text, g.rolname::text, coalesce(shobj_description(g.oid, 'pg_authid'), '')
  FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
 WHERE u.rolname = ANY($1::text[])`
)

func (*postgres) lookupSQL() (roles, members string) { return lookupRolesSQL, lookupMembersSQL }

// touchSQL marks the roles $1 used now, in the lease table (which has a row
// for every role an Ensure locked).
const touchSQL = `UPDATE ` + leaseTable + ` SET last_used = now() WHERE role = ANY($1::text[])`

func (*postgres) touchSQL() string { return touchSQL }

// listRevokes lists nothing: plan.ResetDirectSQL finds the privileges
// itself.
func (*postgres) listRevokes(context.Context, *plan.Plan) ([]string, error) { return nil, nil }

// userRecordPrefix starts the comment of every Waypoint user role
// (plan.Record marshals its fields in declaration order).
const userRecordPrefix = `{"waypoint":1,"kind":"user"`

// terminateSQL terminates backend $1 if its role has the prefix $2 and a
// Waypoint user record, waiting up to $3 ms for it to exit. No row: there is
// no such backend. ours false: it is not a Waypoint session (not touched).
const terminateSQL = `SELECT ours, CASE WHEN ours THEN pg_terminate_backend(pid, $3::int8) ELSE false END
  FROM (SELECT a.pid, coalesce(starts_with(r.rolname, $2)
               AND starts_with(coalesce(shobj_description(r.oid, 'pg_authid'), ''), '` + userRecordPrefix + `'), false) AS ours
          FROM pg_stat_activity a LEFT JOIN pg_roles r ON r.oid = a.usesysid
         WHERE a.pid = $1::int4) s`

func (*postgres) terminateSQL() (string, error) { return terminateSQL, nil }
