package provision

import (
	"context"
	mrand "math/rand/v2"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/ctxtime"
	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
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
func (p *Provisioner) rotate(ctx context.Context, req *plan.Request) (role, password string, created bool, lock roleLock, err error) {
	password, err = newPassword()
	if err != nil {
		return "", "", false, nil, backendErr("generate password", err)
	}
	var found *plan.Lookup
	if e, ok := p.warm.get(req, time.Now()); ok {
		objects := p.warmer.objectsFingerprint(ctx, req)
		defer p.finishFingerprint(req.Database(), objects) // never leave the query running past rotate
		var done bool
		lock, done, err = p.warmer.rotateWarm(ctx, req, e, password, objects)
		if err != nil {
			return "", "", false, nil, err
		}
		if done {
			p.stats.rotations.Add(1)
			p.stats.warm.Add(1)
			return e.role, password, false, lock, nil
		}
		p.warm.forget(req.Key())
		if lock != nil {
			if found, err = p.lookupRoles(ctx, req.LookupNames(), req.Candidates()); err != nil {
				lock.unlock()
				return "", "", false, nil, err
			}
		}
	}
	if lock == nil {
		if lock, found, err = p.lockAndLookup(ctx, req); err != nil {
			return "", "", false, nil, err
		}
	}
	pl, err := p.applyLocked(ctx, req, found, password)
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

// applyLocked decides the plan from found and runs it, retrying after a
// concurrent-update conflict (with a fresh lookup). password "" keeps the
// role's password. On success the role is cached for the warm path (see
// remember). The caller holds the role's lock and keeps it either way.
func (p *Provisioner) applyLocked(ctx context.Context, req *plan.Request, found *plan.Lookup, password string) (*plan.Plan, error) {
	verifier := func(role string) (string, error) {
		if password == "" {
			return "", nil
		}
		return p.verifier(password, role)
	}
	for attempt := 1; ; attempt++ {
		pl, err := req.Plan(found, p.opts.PasswordLifetime, plan.UsersGroup(p.opts.Prefix), verifier)
		if err == nil && pl.ResetDirect {
			pl.Revoke, err = p.dialect.listRevokes(ctx, pl)
		}
		if err == nil {
			if p.cacheable(req) {
				pl.Fingerprint = req.Schemas()
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
		if err := ctxtime.Sleep(ctx, conflictBackoff(attempt)); err != nil {
			return nil, backendErr("retry provisioning", err)
		}
		if found, err = p.lookupRoles(ctx, req.LookupNames(), req.Candidates()); err != nil {
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
// reconciled on every connection. A dialect without a warm path caches
// nothing.
func (p *Provisioner) cacheable(req *plan.Request) bool {
	return p.warmer != nil && !req.HasRawSQL()
}

// remember caches the state pl left the role in, for the warm path: the
// objects fingerprint apply read inside the transaction, before its grants.
func (p *Provisioner) remember(req *plan.Request, pl *plan.Plan) {
	if !p.cacheable(req) || pl.ObjectsFP == "" {
		p.warm.forget(req.Key())
		return
	}
	p.warm.put(req.Key(), warmEntry{
		role: pl.Role, grant: req.Fingerprint(), comment: pl.Record.String(), objects: pl.ObjectsFP, at: time.Now(),
	})
}

// validUntil is VALID UNTIL now()+PasswordLifetime by the server's clock, estimated from
// the local clock and the offset seen at the last lookup, as a timestamp
// literal in UTC.
func (p *Provisioner) validUntil() string {
	return plan.TimestampLiteral(time.Now().Add(time.Duration(p.clockOffset.Load()) + p.opts.PasswordLifetime))
}
