package provision

import (
	"context"
	"errors"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// dialect is everything about the backend that differs between PostgreSQL
// (postgres) and CockroachDB (cockroach): the SQL of a plan (plan.Syntax),
// Waypoint's state tables, how role names are locked across instances,
// how roles and owner records are looked up, how use is recorded and how
// Cleanup rechecks, deactivates and drops a role. New picks one from
// SELECT version(); nothing outside the two implementations asks which
// one it is.
type dialect interface {
	plan.Syntax
	// String names the server, e.g. "PostgreSQL".
	String() string

	// sessionParams are run-time parameters every admin connection sets
	// (none: the connections New opened are kept).
	sessionParams() map[string]string
	// passwordEncryption returns the server's password_encryption.
	passwordEncryption(ctx context.Context) (string, error)
	// stateTables create Waypoint's tables in stateSchema (idempotent).
	stateTables() []string
	// createUsersGroup creates the UsersGroup role name with its record.
	createUsersGroup(name string) []string

	// lookupSQL returns the query of the roles among the names $1 (name,
	// owner record or "", whether the admin has the role's privileges) and
	// of the groups of the members $1 (member, group, group's record or "").
	lookupSQL() (roles, members string)
	// lockRoles makes one attempt to lock names (sorted, distinct) against
	// every other holder, recording them as used now, and queues then
	// under the lock, in the same round trip where it can. It returns an
	// error wrapping errLockHeld when another holder has any of them.
	lockRoles(ctx context.Context, names []string, then *pgx.Batch) (roleLock, error)
	// touchSQL records the roles $1 as used now.
	touchSQL() string
	// listRevokes returns the statements plan.Syntax.ResetDirect needs
	// listed beforehand for pl.Role in pl.Database (none where the server
	// finds them in SQL).
	listRevokes(ctx context.Context, pl *plan.Plan) ([]string, error)
	// terminateSQL is the query Terminate runs (see terminateSQL), or an
	// error when the server cannot terminate a session by process ID.
	terminateSQL() (string, error)

	// expiredRolesSQL lists cleanup candidates: (role, owner record) of
	// roles with the prefix $1 idle for more than $2 seconds.
	expiredRolesSQL() string
	// cleanRole is Cleanup's step for one candidate (see Cleanup).
	cleanRole(ctx context.Context, role string, rec plan.Record) (cleanupOutcome, error)
	// afterCleanup runs after each Cleanup pass.
	afterCleanup(ctx context.Context)
}

// warmPath is the one-statement rotation of a role this process
// provisioned recently (see Ensure). A dialect that has none does not
// implement it, and every Ensure reconciles.
type warmPath interface {
	// objectsFingerprint starts reading the objects fingerprint of req's
	// schemas; the caller must wait for it.
	objectsFingerprint(ctx context.Context, req *plan.Request) *pendingFingerprint
	// rotateWarm tries the warm rotation of e (see postgres.rotateWarm).
	rotateWarm(ctx context.Context, req *plan.Request, e warmEntry, password string, objects *pendingFingerprint) (lock roleLock, done bool, err error)
}

// roleLock is a cross-instance lock on one identity's role names, held from
// before a password rotation until the last Lease of the rotation is
// released (or for one Cleanup step).
type roleLock interface {
	// unlock releases the lock. It cannot fail: a lock it cannot release
	// is dropped by the server (a lease expires, a connection is closed).
	unlock()
}

// errLockHeld is wrapped by dialect.lockRoles' error when another holder
// has the lock.
var errLockHeld = errors.New("role lock held by another Waypoint instance")

// detectDialect returns the dialect of the server that answered
// SELECT version() with version.
func detectDialect(p *Provisioner, version string) dialect {
	if strings.Contains(version, "CockroachDB") {
		return newCockroach(p)
	}
	return &postgres{p: p}
}
