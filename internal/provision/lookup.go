package provision

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// lookupRoles reads, in one round trip, the database clock, which of names
// exist with their owner records, and the group memberships of members.
func (p *Provisioner) lookupRoles(ctx context.Context, names, members []string) (*plan.Lookup, error) {
	b, found := p.queueLookup(names, members)
	if err := p.adminPool.SendBatch(ctx, b).Close(); err != nil {
		return nil, backendErr("look up roles", err)
	}
	return found, nil
}

// queueLookup returns a batch that fills in the returned Lookup when its
// results are read.
func (p *Provisioner) queueLookup(names, members []string) (*pgx.Batch, *plan.Lookup) {
	rolesSQL, membersSQL := p.dialect.lookupSQL()
	found := plan.NewLookup(time.Time{})
	b := &pgx.Batch{}
	b.Queue("SELECT now()").QueryRow(func(r pgx.Row) error {
		if err := r.Scan(&found.Now); err != nil {
			return err
		}
		// now() is the transaction's start, a moment ago: close enough
		// for VALID UNTIL, which only needs to be about now+TTL.
		p.clockOffset.Store(int64(found.Now.Sub(time.Now())))
		return nil
	})
	b.Queue(rolesSQL, names).Query(func(rows pgx.Rows) error {
		var name, comment string
		var adminHas bool
		_, err := pgx.ForEachRow(rows, []any{&name, &comment, &adminHas}, func() error {
			found.Roles[name] = plan.NewRoleInfo(comment, adminHas)
			return nil
		})
		return err
	})
	b.Queue(membersSQL, members).Query(func(rows pgx.Rows) error {
		var member, group, comment string
		_, err := pgx.ForEachRow(rows, []any{&member, &group, &comment}, func() error {
			rec, ours := plan.ParseRecord(comment)
			found.Members[member] = append(found.Members[member], plan.Membership{Group: group, Ours: ours && rec.Kind == plan.RecordGroup})
			return nil
		})
		return err
	})
	return b, found
}
