package provision

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Coordination state lives in the schema stateSchema of the admin database,
// owned by the admin role, with no privilege for anyone else. Nothing there
// is reachable by a granted user: advisory locks are not used at all (any
// role can take any advisory lock key in any database it can connect to,
// and pg_locks shows the keys in use), and a "*" grant never matches the
// admin database (authz.Policy.AdminDatabase).
const (
	stateSchema = "waypoint"
	// leaseTable has one row per role name Waypoint has locked: who holds
	// the role's lease until when, and when the role was last used.
	leaseTable = stateSchema + ".roles"
)

const (
	// leaseTTL is how long a role lease lasts when its holder does not
	// release it (the holder died). It exceeds the longest connection setup,
	// so a live holder never loses its lease.
	leaseTTL = time.Minute
	// unlockTimeout bounds releasing a role lease or lock.
	unlockTimeout = 5 * time.Second
	// leasePollMax is the longest pause between two attempts to take a
	// lease another instance holds.
	leasePollMax = 100 * time.Millisecond
)

// stateSetupSQL creates the lease table; the schema is created (or checked)
// by setupState.
const stateSetupSQL = `CREATE TABLE IF NOT EXISTS ` + leaseTable + ` (
  role       text PRIMARY KEY,
  holder     text NOT NULL,
  held_until timestamptz NOT NULL,
  last_used  timestamptz
)`

// roleLock is a cross-instance lock on one identity's role names, held from
// before the password rotation until the last Lease of the rotation is
// released.
//
// PostgreSQL: a lease, i.e. rows of leaseTable naming this holder until a
// time, taken and released in short transactions: no admin connection is
// held while the lease is, and no granted user can see or take it.
// CockroachDB: rows of crdbLockTable locked with SELECT ... FOR UPDATE in a
// transaction that stays open on conn until unlock.
type roleLock struct {
	p      *Provisioner
	names  []string // sorted
	holder string   // random token naming this lease

	conn   *pgxpool.Conn // CockroachDB: the connection holding tx
	tx     pgx.Tx        // CockroachDB: the transaction holding the lock rows
	commit bool          // CockroachDB: unlock commits tx (Cleanup's changes) instead of rolling it back
}

func (p *Provisioner) newLock(names []string) *roleLock {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	names = slices.Clone(names)
	slices.Sort(names)
	return &roleLock{p: p, names: slices.Compact(names), holder: hex.EncodeToString(b)}
}

// acquireSQL is the statement that takes l's lease in one implicit
// transaction, or fails with division_by_zero (22012) when another holder
// has any of the names. use also records the names as used now (for
// Cleanup's idle time). Rows are locked in name order, so two acquirers
// never deadlock.
func (l *roleLock) acquireSQL(use bool) string {
	lits := make([]string, len(l.names))
	for i, n := range l.names {
		lits[i] = quoteLiteral(n)
	}
	used := "NULL::timestamptz"
	if use {
		used = "now()"
	}
	return fmt.Sprintf(`WITH got AS (
  INSERT INTO %s AS w (role, holder, held_until, last_used)
  SELECT n, %s, now() + interval '%d milliseconds', %s FROM unnest(ARRAY[%s]::text[]) AS n ORDER BY n
  ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, held_until = excluded.held_until,
         last_used = coalesce(excluded.last_used, w.last_used)
   WHERE w.held_until < now() OR w.holder = excluded.holder
  RETURNING 1)
SELECT 1 / (count(*) / %d)::int FROM got`,
		leaseTable, quoteLiteral(l.holder), leaseTTL.Milliseconds(), used, strings.Join(lits, ", "), len(l.names))
}

// isLeaseHeld reports whether err is acquireSQL's "held by another" failure.
func isLeaseHeld(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == sqlstateDivisionByZero
}

// lockAndLookup takes the lock on req's role names, marking them used, and
// reads the lookup in the same round trip. A lease another instance holds
// is retried until ctx is done.
func (p *Provisioner) lockAndLookup(ctx context.Context, req *request) (*roleLock, *lookup, error) {
	members := []string{req.primary, req.alternate}
	l := p.newLock(members)
	for wait := 2 * time.Millisecond; ; wait = min(2*wait, leasePollMax) {
		b, lk := p.queueLookup(req.lookupNames(), members)
		err := p.acquire(ctx, l, b)
		if err == nil {
			return l, lk, nil
		}
		if !isLeaseHeld(err) {
			return nil, nil, backendErr("lock role", err)
		}
		if err := sleepCtx(ctx, wait); err != nil {
			return nil, nil, backendErr("wait for role lock held by another Waypoint instance", err)
		}
	}
}

// acquire makes one attempt to take l, then runs then in the same
// transaction (PostgreSQL) or under the lock (CockroachDB).
func (p *Provisioner) acquire(ctx context.Context, l *roleLock, then *pgx.Batch) error {
	if p.crdb {
		conn, err := p.admin.Acquire(ctx)
		if err != nil {
			return err
		}
		l.conn = conn
		if err := l.lockCRDB(ctx, then); err != nil {
			l.discard()
			return err
		}
		return nil
	}
	b := &pgx.Batch{}
	b.Queue(l.acquireSQL(true))
	b.QueuedQueries = append(b.QueuedQueries, then.QueuedQueries...)
	return p.admin.SendBatch(ctx, b).Close()
}

// tryLockRole takes the lock for one role without waiting and without
// marking it used; ok is false when another holder has it.
func (p *Provisioner) tryLockRole(ctx context.Context, name string) (l *roleLock, ok bool, err error) {
	l = p.newLock([]string{name})
	if p.crdb {
		conn, err := p.admin.Acquire(ctx)
		if err != nil {
			return nil, false, backendErr("acquire admin connection", err)
		}
		l.conn = conn
		ok, err = l.tryLockCRDB(ctx, name)
		if err != nil || !ok {
			l.discard()
			if err != nil {
				return nil, false, backendErr("lock role", err)
			}
			return nil, false, nil
		}
		return l, true, nil
	}
	_, err = p.admin.Exec(ctx, l.acquireSQL(false))
	switch {
	case isLeaseHeld(err):
		return nil, false, nil
	case err != nil:
		return nil, false, backendErr("lock role", err)
	}
	return l, true, nil
}

// unlock releases the lock. A lease that cannot be released expires by
// itself after leaseTTL; a CockroachDB lock connection that cannot be
// cleaned is closed.
func (l *roleLock) unlock() {
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	if l.conn == nil {
		lits := make([]string, len(l.names))
		for i, n := range l.names {
			lits[i] = quoteLiteral(n)
		}
		_, err := l.p.admin.Exec(ctx, fmt.Sprintf("UPDATE %s SET held_until = '-infinity' WHERE role = ANY(ARRAY[%s]::text[]) AND holder = %s",
			leaseTable, strings.Join(lits, ", "), quoteLiteral(l.holder)))
		if err != nil {
			l.p.log.Warn("could not release role lease; it expires by itself", "roles", l.names, "expires_in", leaseTTL, "err", err)
		}
		return
	}
	var err error
	if l.commit {
		err = l.tx.Commit(ctx)
	} else {
		err = l.tx.Rollback(ctx)
	}
	if err != nil {
		l.discard()
		return
	}
	l.conn.Release()
}

// discard closes a CockroachDB lock connection (dropping its locks) and
// gives the slot back to the pool.
func (l *roleLock) discard() {
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	_ = l.conn.Conn().Close(ctx)
	l.conn.Release()
}

// sleepCtx waits for d or until ctx is done, returning ctx's error then.
func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
