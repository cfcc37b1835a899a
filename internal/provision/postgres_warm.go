package provision

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// PostgreSQL's warm path (see Ensure): postgres implements warmPath.

// objectsFingerprint starts reading the objects fingerprint of req's
// schemas in req's database, on a connection of that database's pool, for
// the warm path to compare with the cached one. (The cached one is read in
// the provisioning transaction before its GRANT ... ON ALL TABLES, so a
// relation created in between is both granted and, at the next Ensure,
// seen as a change: one extra reconcile, never a missed table.) The caller
// must wait for it.
func (d *postgres) objectsFingerprint(ctx context.Context, req *plan.Request) *pendingFingerprint {
	f := &pendingFingerprint{done: make(chan struct{})}
	schemas := req.Schemas()
	go func() {
		defer close(f.done)
		pool, err := d.p.workPool(req.Database())
		if err != nil {
			f.err = err
			return
		}
		f.pool = pool
		f.err = pool.QueryRow(ctx, plan.ObjectsFingerprintSQL, schemas).Scan(&f.fp)
	}()
	return f
}

// rotateWarm runs the warm path for the cached state e: one pipeline on an
// admin connection, one implicit transaction (with synchronous_commit off:
// a rotation lost in a crash is harmless, the next Ensure rotates again)
// that
//
//  1. takes the role's lease and marks the role used (leaseLock.acquireSQL);
//  2. checks that e.role is a login role whose owner record is still exactly
//     e.comment, i.e. no instance reconciled it to another grant since: the
//     check divides by the number of matching roles, so a mismatch is an
//     error that aborts the rest of the pipeline;
//  3. sets the password verifier and VALID UNTIL in one ALTER ROLE.
//
// done is true when that worked and the objects fingerprint, read in
// parallel, still equals e.objects: nothing else is to be done. Otherwise,
// lock is the lease when it is held (the caller must look up and
// reconcile), or nil when the transaction failed as a whole (the lease is
// another instance's, or the role changed): the caller takes the cold path.
func (d *postgres) rotateWarm(ctx context.Context, req *plan.Request, e warmEntry, password string, objects *pendingFingerprint) (lock roleLock, done bool, err error) {
	p := d.p
	v, err := p.verifier(password, e.role)
	if err != nil {
		return nil, false, backendErr("hash password", err)
	}
	conn, err := p.adminPool.Acquire(ctx)
	if err != nil {
		return nil, false, backendErr("acquire admin connection", err)
	}
	defer conn.Release()
	for _, st := range [...]struct{ name, sql string }{{warmAcquireName, acquireSQL}, {warmCheckName, warmCheckSQL}} {
		if _, err := conn.Conn().Prepare(ctx, st.name, st.sql); err != nil { // a round trip once per connection, then pgx's cache
			return nil, false, backendErr("prepare warm rotation", err)
		}
	}
	lease := d.newLease(req.Candidates())
	sum := md5.Sum([]byte(e.comment))
	batch := &pgconn.Batch{}
	batch.ExecPrepared(warmAcquireName, [][]byte{[]byte(lease.holder), textArray(lease.names), []byte("t")}, nil, nil)
	batch.ExecParams("SELECT set_config('synchronous_commit', 'off', true)", nil, nil, nil, nil)
	batch.ExecPrepared(warmCheckName, [][]byte{[]byte(e.role), []byte(hex.EncodeToString(sum[:]))}, nil, nil)
	batch.ExecParams(fmt.Sprintf("ALTER ROLE %s WITH PASSWORD %s VALID UNTIL %s",
		plan.QuoteIdent(e.role), plan.QuoteLiteral(v), plan.QuoteLiteral(p.validUntil())), nil, nil, nil, nil)
	if _, err := conn.Conn().PgConn().ExecBatch(ctx, batch).ReadAll(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			p.log.Debug("warm rotation refused; taking the cold path", "role", e.role, "err", err)
			return nil, false, nil // the implicit transaction, lease included, rolled back
		}
		lease.abandon()
		return nil, false, backendErr("rotate password", err)
	}
	if fp, ferr := objects.wait(); ferr != nil || fp != e.objects {
		return lease, false, nil
	}
	return lease, true, nil
}

// The warm path's check, prepared once per lock connection: $1 is the role,
// $2 the md5 of the owner record expected as its comment. It fails with
// "division by zero" (22012) unless exactly that role matches. (A runtime
// error is needed: a CASE with a constant error branch may be folded, and
// fail, at plan time.)
const (
	warmAcquireName = "waypoint_warm_acquire" // acquireSQL
	warmCheckName   = "waypoint_warm_check"
	warmCheckSQL    = `SELECT 1 / count(*) FROM pg_roles r
 WHERE r.rolname = $1 AND r.rolcanlogin AND md5(coalesce(shobj_description(r.oid, 'pg_authid'), '')) = $2`
)
