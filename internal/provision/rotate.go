package provision

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// rotate locks the role, sets a fresh password and makes the role's
// privileges match req, and returns the lock still held. On error nothing
// is held.
//
// The warm path (see rotateWarm) is one pipeline on an admin connection
// that locks, checks and rotates, while the objects fingerprint of the
// granted schemas is read in parallel in the target database. Only when
// something changed (or nothing is cached) does rotate look the roles up and
// run the provisioning transaction (reconcile).
func (p *Provisioner) rotate(ctx context.Context, req *request) (role, password string, created bool, lock *roleLock, err error) {
	password, err = newPassword()
	if err != nil {
		return "", "", false, nil, backendErr("generate password", err)
	}
	var lk *lookup
	if e, ok := p.warm.get(req, time.Now()); ok {
		objects := p.objectsFingerprint(ctx, req)
		defer p.finishFingerprint(req.eff.Database, objects) // never leave the query running past rotate
		var done bool
		lock, done, err = p.rotateWarm(ctx, req, e, password, objects)
		if err != nil {
			return "", "", false, nil, err
		}
		if done {
			p.stats.rotations.Add(1)
			p.stats.warm.Add(1)
			return e.role, password, false, lock, nil
		}
		p.warm.forget(req.key())
		if lock != nil {
			if lk, err = p.lookupRoles(ctx, p.admin, req.lookupNames(), []string{req.primary, req.alternate}); err != nil {
				lock.unlock()
				return "", "", false, nil, err
			}
		}
	}
	if lock == nil {
		if lock, lk, err = p.lockAndLookup(ctx, req); err != nil {
			return "", "", false, nil, err
		}
	}
	pl, err := p.applyLocked(ctx, req, lk, password)
	if err != nil {
		lock.unlock()
		return "", "", false, nil, err
	}
	p.stats.rotations.Add(1)
	if pl.CreateRole {
		p.stats.created.Add(1)
	}
	return pl.Role, password, pl.CreateRole, lock, nil
}

// maxApplyAttempts bounds how often applyLocked runs the provisioning
// transaction when it meets a concurrent-update conflict (another instance
// granting on the same catalog rows at the same moment).
const maxApplyAttempts = 3

// applyLocked decides the plan from lk and runs it, retrying after a
// concurrent-update conflict (with a fresh lookup). password "" keeps the
// role's password. On success the role is cached for the warm path (see
// remember). The caller holds the role's lock and keeps it either way.
func (p *Provisioner) applyLocked(ctx context.Context, req *request, lk *lookup, password string) (*plan, error) {
	verifier := func(role string) (string, error) {
		if password == "" {
			return "", nil
		}
		return p.verifier(password, role)
	}
	for attempt := 1; ; attempt++ {
		pl, err := req.buildPlan(lk, p.opts.PasswordLifetime, UsersGroup(p.opts.Prefix), verifier)
		if err == nil && p.crdb && pl.ResetDirect {
			pl.Revoke, err = p.crdbRevokes(ctx, pl)
		}
		if err == nil {
			pl.CRDBRecords = p.crdbRecords()
			if p.cacheable(req) {
				pl.Fingerprint = req.schemas()
			}
			err = p.apply(ctx, pl)
		}
		if err == nil {
			p.remember(req, pl)
			return pl, nil
		}
		if attempt == maxApplyAttempts || !isConflict(err) {
			return nil, err
		}
		p.stats.retries.Add(1)
		if err := sleepCtx(ctx, conflictBackoff(attempt)); err != nil {
			return nil, backendErr("retry provisioning", err)
		}
		if lk, err = p.lookupRoles(ctx, p.admin, req.lookupNames(), []string{req.primary, req.alternate}); err != nil {
			return nil, err
		}
	}
}

// conflictBackoff is the pause before retrying after the attempt-th
// concurrent-update conflict: a few random milliseconds, growing, so that
// two instances that collided do not collide again.
func conflictBackoff(attempt int) time.Duration {
	return time.Duration(attempt) * time.Duration(1+mrand.IntN(10)) * time.Millisecond
}

// cacheable reports whether req's role state may be cached for the warm
// path. Grants with raw SQL are not: their statements may name objects
// outside the fingerprinted schemas (or functions, types), so they are
// reconciled on every connection. CockroachDB has no warm path.
func (p *Provisioner) cacheable(req *request) bool {
	return !p.crdb && len(req.eff.SQL) == 0
}

// remember caches the state pl left the role in, for the warm path: the
// objects fingerprint apply read inside the transaction, before its grants.
func (p *Provisioner) remember(req *request, pl *plan) {
	if !p.cacheable(req) || pl.ObjectsFP == "" {
		p.warm.forget(req.key())
		return
	}
	p.warm.put(req.key(), warmEntry{
		role: pl.Role, grant: req.fingerprint(), comment: pl.Record.String(), objects: pl.ObjectsFP, at: time.Now(),
	})
}

// rotateWarm runs the warm path for the cached state e: one pipeline on an
// admin connection, one implicit transaction (with synchronous_commit off:
// a rotation lost in a crash is harmless, the next Ensure rotates again)
// that
//
//  1. takes the role's lease and marks the role used (acquireSQL);
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
func (p *Provisioner) rotateWarm(ctx context.Context, req *request, e warmEntry, password string, objects *pendingFingerprint) (lock *roleLock, done bool, err error) {
	v, err := p.verifier(password, e.role)
	if err != nil {
		return nil, false, backendErr("hash password", err)
	}
	conn, err := p.admin.Acquire(ctx)
	if err != nil {
		return nil, false, backendErr("acquire admin connection", err)
	}
	defer conn.Release()
	if _, err := conn.Conn().Prepare(ctx, warmCheckName, warmCheckSQL); err != nil { // once per connection
		return nil, false, backendErr("prepare warm check", err)
	}
	lock = p.newLock([]string{req.primary, req.alternate})
	sum := md5.Sum([]byte(e.comment))
	batch := &pgconn.Batch{}
	batch.ExecParams(lock.acquireSQL(true), nil, nil, nil, nil)
	batch.ExecParams("SELECT set_config('synchronous_commit', 'off', true)", nil, nil, nil, nil)
	batch.ExecPrepared(warmCheckName, [][]byte{[]byte(e.role), []byte(hex.EncodeToString(sum[:]))}, nil, nil)
	batch.ExecParams(fmt.Sprintf("ALTER ROLE %s WITH PASSWORD %s VALID UNTIL %s",
		quoteIdent(e.role), quoteLiteral(v), quoteLiteral(p.validUntil())), nil, nil, nil, nil)
	if _, err := conn.Conn().PgConn().ExecBatch(ctx, batch).ReadAll(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			p.log.Debug("warm rotation refused; taking the cold path", "role", e.role, "err", err)
			return nil, false, nil
		}
		return nil, false, backendErr("rotate password", err)
	}
	if fp, ferr := objects.wait(); ferr != nil || fp != e.objects {
		return lock, false, nil
	}
	return lock, true, nil
}

// The warm path's check, prepared once per lock connection: $1 is the role,
// $2 the md5 of the owner record expected as its comment. It fails with
// "division by zero" (22012) unless exactly that role matches. (A runtime
// error is needed: a CASE with a constant error branch may be folded, and
// fail, at plan time.)
const (
	warmCheckName = "waypoint_warm_check"
	warmCheckSQL  = `SELECT 1 / count(*) FROM pg_roles r
 WHERE r.rolname = $1 AND r.rolcanlogin AND md5(coalesce(shobj_description(r.oid, 'pg_authid'), '')) = $2`
)

// validUntil is VALID UNTIL now()+PasswordLifetime by the server's clock, estimated from
// the local clock and the offset seen at the last lookup, as a timestamp
// literal in UTC.
func (p *Provisioner) validUntil() string {
	t := time.Now().Add(time.Duration(p.clockOffset.Load()) + p.opts.PasswordLifetime)
	return t.UTC().Format("2006-01-02 15:04:05.999999") + "+00"
}

// doBlock wraps a PL/pgSQL body in DO with a dollar-quote tag that does not
// occur in body.
func doBlock(body string) string {
	tag := "$wp$"
	for i := 0; strings.Contains(body, tag); i++ {
		tag = fmt.Sprintf("$wp%d$", i)
	}
	return "DO " + tag + "\n" + body + "\n" + tag
}

// crdbRevokes lists what ResetDirect must revoke from pl.Role in
// pl.Database on CockroachDB (which has no DO blocks).
func (p *Provisioner) crdbRevokes(ctx context.Context, pl *plan) ([]string, error) {
	pool, err := p.pool(pl.Database)
	if err != nil {
		return nil, err
	}
	return crdbRevokeDirect(ctx, pool, pl.Role)
}
