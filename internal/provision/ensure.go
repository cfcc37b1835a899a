package provision

import (
	"context"
	"errors"
	"sync"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// Lease is the result of Ensure: a role and the password just set for it.
// The role stays locked against other rotations (in this process and in
// other Waypoint instances sharing the admin database) until every Lease of
// the rotation is released, so the password cannot change before the login
// that uses it.
type Lease struct {
	Role     string // the backend role to log in as
	Password string // its password, valid until the next rotation or TTL
	Database string // the database the role was provisioned for
	Created  bool   // the role was created by this rotation

	rot  *rotation
	once sync.Once
}

// Release ends the lease. Call it once the upstream login with these
// credentials has finished, whether it succeeded or not. It is idempotent,
// safe for concurrent use and does not block: the last Release of a
// rotation unlocks the role in the background (a later rotation of the same
// role waits for that).
func (l *Lease) Release() {
	l.once.Do(func() { l.rot.release() })
}

// rotation is one password rotation of one role, shared by every Ensure
// caller that joined it while it was being prepared.
type rotation struct {
	p        *Provisioner
	key      string
	fp       string
	database string
	ready    chan struct{} // closed when prepared (lease fields or err set)
	done     chan struct{} // closed when the last lease is released, or on failure

	// Set before ready is closed; read-only after.
	role, password string
	created        bool
	err            error
	lock           roleLock

	// Guarded by p.mu.
	refs   int
	sealed bool // prepared: no more joiners
}

// Ensure makes the role for peer on eff.Database exist with exactly the
// privileges eff implies and a fresh password, and returns a Lease that the
// caller must Release after logging in.
//
// Concurrent calls for the same role and the same grant coalesce: one
// rotation, one password, shared by all of them. A later rotation waits
// until every lease of the previous one is released. All waiting is bounded
// by ctx. Errors are *Error (see ErrorKind); nothing is changed in the
// database when the grant cannot be applied completely.
//
// Cost. A warm Ensure (this process provisioned the role with the same
// grant less than warmMaxAge ago, and the grant has no raw SQL) is one
// pipeline on the admin connection — lock, then one statement that checks
// the role's owner record and sets password and VALID UNTIL — while the
// objects fingerprint of the granted schemas is read in parallel in the
// target database: one round trip of latency, two messages, plus the
// unlock that Release sends in the background. (pgxpool pings a pooled
// connection idle for over a second before handing it out, so on a quiet
// instance each of the two pools may add a ping.) When the role, its grant or
// the schemas' set of relations changed (or nothing is cached) Ensure
// reconciles: lock and lookup (one pipeline), the provisioning transaction
// (one pipeline) and its COMMIT.
func (p *Provisioner) Ensure(ctx context.Context, peer identity.Peer, eff authz.Effective) (*Lease, error) {
	l, err := p.ensure(ctx, peer, eff)
	if err != nil {
		p.stats.ensureErrors.Add(1)
		return nil, err
	}
	p.stats.provisioned.Add(1)
	return l, nil
}

func (p *Provisioner) ensure(ctx context.Context, peer identity.Peer, eff authz.Effective) (*Lease, error) {
	req, err := plan.NewRequest(p.opts.Prefix, peer, eff)
	if err != nil {
		return nil, err
	}
	key, fp := req.Key(), req.Fingerprint()
	for {
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			return nil, &Error{Kind: Closed, Msg: "provisioner closed"}
		}
		r := p.rotations[key]
		if r == nil {
			r = &rotation{p: p, key: key, fp: fp, database: req.Database(), ready: make(chan struct{}), done: make(chan struct{}), refs: 1}
			p.rotations[key] = r
			p.mu.Unlock()
			p.prepare(ctx, r, req)
			return r.lease(ctx)
		}
		if !r.sealed && r.fp == fp {
			r.refs++
			p.mu.Unlock()
			p.stats.coalesced.Add(1)
			l, err := r.wait(ctx)
			// Our own ctx is checked first: only when it is live did wait
			// return because r is ready, which makes r.err safe to read.
			if err != nil && ctx.Err() == nil && isContextErr(r.err) {
				continue // the leader gave up; try again with our own deadline
			}
			return l, err
		}
		done := r.done
		p.mu.Unlock()
		select {
		case <-done:
		case <-ctx.Done():
			return nil, backendErr("wait for role rotation", ctx.Err())
		}
	}
}

// prepare runs the rotation and publishes its result.
func (p *Provisioner) prepare(ctx context.Context, r *rotation, req *plan.Request) {
	r.role, r.password, r.created, r.lock, r.err = p.rotate(ctx, req)
	if r.err != nil && ctx.Err() == nil && isDeadConn(r.err) {
		// An admin connection died (e.g. the backend restarted): its idle
		// siblings are dead too. Drop them all and retry once.
		p.resetPools()
		r.role, r.password, r.created, r.lock, r.err = p.rotate(ctx, req)
	}
	p.mu.Lock()
	r.sealed = true
	if r.err != nil && p.rotations[r.key] == r {
		delete(p.rotations, r.key)
	}
	p.mu.Unlock()
	close(r.ready)
	if r.err != nil {
		close(r.done)
	}
}

// wait is a joiner's wait for the rotation.
func (r *rotation) wait(ctx context.Context) (*Lease, error) {
	select {
	case <-r.ready:
		return r.lease(ctx)
	case <-ctx.Done():
		r.release()
		return nil, backendErr("wait for role rotation", ctx.Err())
	}
}

// lease returns the caller's Lease once r is ready; the caller holds one ref.
func (r *rotation) lease(context.Context) (*Lease, error) {
	if r.err != nil {
		return nil, r.err
	}
	return &Lease{Role: r.role, Password: r.password, Database: r.database, Created: r.created, rot: r}, nil
}

// release drops one reference; the last one unlocks the role.
func (r *rotation) release() {
	p := r.p
	p.mu.Lock()
	if r.sealed && r.err != nil { // failed rotations hold no lock and are already done
		p.mu.Unlock()
		return
	}
	r.refs--
	last := r.refs == 0 && r.sealed
	if last && p.rotations[r.key] == r {
		delete(p.rotations, r.key)
	}
	p.mu.Unlock()
	if last {
		p.unlockAsync(r.lock, r.done)
	}
}

// unlockAsync releases lock in the background, so that Release does not
// add a round trip to the caller's connection setup, and closes done when
// it is released. Close waits for it, at most unlockTimeout; Cleanup waits
// for pending unlocks before it try-locks roles.
func (p *Provisioner) unlockAsync(lock roleLock, done chan struct{}) {
	p.unlocking.Store(lock, done)
	go func() {
		lock.unlock()
		p.unlocking.Delete(lock)
		close(done)
	}()
}

// waitUnlocks waits until every unlock started before the call finished,
// or ctx is done.
func (p *Provisioner) waitUnlocks(ctx context.Context) {
	p.unlocking.Range(func(_, v any) bool {
		select {
		case <-v.(chan struct{}):
			return true
		case <-ctx.Done():
			return false
		}
	})
}

func isContextErr(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}
