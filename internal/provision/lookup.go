package provision

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// lookup is what the admin database says about the candidate role names.
type lookup struct {
	Now     time.Time
	Roles   map[string]roleInfo     // existing roles among the names asked for
	Members map[string][]membership // member role → groups it belongs to
}

// membership is one group a role is a member of.
type membership struct {
	Group string
	Ours  bool // the group has a Waypoint group record
}

const (
	lookupRolesSQL = `SELECT r.rolname::text, coalesce(shobj_description(r.oid, 'pg_authid'), ''),
       pg_has_role(current_user, r.oid, 'USAGE')
  FROM pg_roles r WHERE r.rolname = ANY($1::text[])`
	lookupMembersSQL = `SELECT DISTINCT u.rolname::text, g.rolname::text, coalesce(shobj_description(g.oid, 'pg_authid'), '')
  FROM pg_auth_members m JOIN pg_roles u ON u.oid = m.member JOIN pg_roles g ON g.oid = m.roleid
 WHERE u.rolname = ANY($1::text[])`
)

// lookupRoles reads, in one round trip, the database clock, which of names
// exist with their owner records, and the group memberships of members.
func (p *Provisioner) lookupRoles(ctx context.Context, q interface {
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
}, names, members []string) (*lookup, error) {
	b, lk := p.queueLookup(names, members)
	if err := q.SendBatch(ctx, b).Close(); err != nil {
		return nil, backendErr("look up roles", err)
	}
	return lk, nil
}

// queueLookup returns a batch that fills in the returned lookup when its
// results are read.
func (p *Provisioner) queueLookup(names, members []string) (*pgx.Batch, *lookup) {
	rolesSQL, membersSQL := lookupRolesSQL, lookupMembersSQL
	if p.crdb {
		rolesSQL, membersSQL = crdbLookupRolesSQL, crdbLookupMembersSQL
	}
	lk := &lookup{Roles: map[string]roleInfo{}, Members: map[string][]membership{}}
	b := &pgx.Batch{}
	b.Queue("SELECT now()").QueryRow(func(r pgx.Row) error {
		if err := r.Scan(&lk.Now); err != nil {
			return err
		}
		// now() is the transaction's start, a moment ago: close enough
		// for VALID UNTIL, which only needs to be about now+TTL.
		p.clockOffset.Store(int64(lk.Now.Sub(time.Now())))
		return nil
	})
	b.Queue(rolesSQL, names).Query(func(rows pgx.Rows) error {
		var name, comment string
		var adminHas bool
		_, err := pgx.ForEachRow(rows, []any{&name, &comment, &adminHas}, func() error {
			rec, ours := parseRecord(comment)
			lk.Roles[name] = roleInfo{record: rec, ours: ours, comment: comment, adminHas: adminHas}
			return nil
		})
		return err
	})
	b.Queue(membersSQL, members).Query(func(rows pgx.Rows) error {
		var member, group, comment string
		_, err := pgx.ForEachRow(rows, []any{&member, &group, &comment}, func() error {
			rec, ours := parseRecord(comment)
			lk.Members[member] = append(lk.Members[member], membership{Group: group, Ours: ours && rec.Kind == recordGroup})
			return nil
		})
		return err
	})
	return b, lk
}
