package provision

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/ctxtime"
	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// Coordination state lives in the schema stateSchema of the admin database,
// owned by the admin role, with no privilege for anyone else. Nothing there
// is reachable by a granted user: advisory locks are not used at all (any
// role can take any advisory lock key in any database it can connect to,
// and pg_locks shows the keys in use), and a "*" grant never matches the
// admin database (authz.Policy.AdminDatabase).
const stateSchema = "waypoint"

const (
	// unlockTimeout bounds releasing a role lock.
	unlockTimeout = 5 * time.Second
	// lockPollMax is the longest pause between two attempts to take a role
	// lock another instance holds.
	lockPollMax = 100 * time.Millisecond
)

// lockNames returns names sorted and without duplicates: the order every
// dialect locks rows in, so that two lockers never deadlock.
func lockNames(names []string) []string {
	names = slices.Clone(names)
	slices.Sort(names)
	return slices.Compact(names)
}

// lockAndLookup takes the lock on req's role names, marking them used, and
// reads what the admin database says about them in the same round trip. A
// lock another instance holds is retried until ctx is done; the error then
// says so, wherever in an attempt the context ended.
func (p *Provisioner) lockAndLookup(ctx context.Context, req *plan.Request) (roleLock, *plan.Lookup, error) {
	const heldMsg = "wait for role lock held by another Waypoint instance"
	names := lockNames(req.Candidates())
	held := false
	for wait := 2 * time.Millisecond; ; wait = min(2*wait, lockPollMax) {
		b, found := p.queueLookup(req.LookupNames(), req.Candidates())
		lock, err := p.dialect.lockRoles(ctx, names, b)
		switch {
		case err == nil:
			return lock, found, nil
		case held && ctx.Err() != nil:
			return nil, nil, backendErr(heldMsg, ctx.Err())
		case !errors.Is(err, errLockHeld):
			return nil, nil, backendErr("lock role", err)
		}
		held = true
		if err := ctxtime.Sleep(ctx, wait); err != nil {
			return nil, nil, backendErr(heldMsg, err)
		}
	}
}
