package provision

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// leaseTable has one row per role name Waypoint has locked on PostgreSQL:
// who holds the role's lease until when, and when the role was last used.
const leaseTable = stateSchema + ".roles"

// leaseTTL is how long a role lease lasts when its holder does not release
// it (the holder died). It exceeds the longest connection setup, so a live
// holder never loses its lease.
const leaseTTL = time.Minute

// leaseTableSQL creates the lease table; the schema is created (or checked)
// by setupState.
const leaseTableSQL = `CREATE TABLE IF NOT EXISTS ` + leaseTable + ` (
  role       text PRIMARY KEY,
  holder     text NOT NULL,
  held_until timestamptz NOT NULL,
  last_used  timestamptz
)`

// leaseLock is the PostgreSQL roleLock: a lease, i.e. rows of leaseTable
// naming this holder until a time, taken and released in short
// transactions. No admin connection is held while the lease is, and no
// granted user can see or take it.
type leaseLock struct {
	d      *postgres
	names  []string // sorted, distinct
	holder string   // random token naming this lease
	// expires is when the lease ends by itself at the latest: leaseTTL
	// after newLease, which runs before the lease is taken.
	expires time.Time
}

func (d *postgres) newLease(names []string) *leaseLock {
	b := make([]byte, 12)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return &leaseLock{d: d, names: lockNames(names), holder: hex.EncodeToString(b), expires: time.Now().Add(leaseTTL)}
}

// acquireSQL takes a lease in one implicit transaction, or fails with
// division_by_zero (22012) when another holder has any of the names. $1 is
// the holder, $2 the names (text[]), $3 whether to record the names as used
// now (for Cleanup's idle time). Rows are locked in name order, so two
// acquirers never deadlock. The text is constant, so drivers prepare and
// cache it once per connection: the holder and names are parameters.
var acquireSQL = fmt.Sprintf(`WITH got AS (
  INSERT INTO %s AS w (role, holder, held_until, last_used)
  SELECT n, $1::text, now() + interval '%d milliseconds', CASE WHEN $3::boolean THEN now() END
    FROM unnest($2::text[]) AS n ORDER BY n
  ON CONFLICT (role) DO UPDATE SET holder = excluded.holder, held_until = excluded.held_until,
         last_used = coalesce(excluded.last_used, w.last_used)
   WHERE w.held_until < now() OR w.holder = excluded.holder
  RETURNING 1)
SELECT 1 / (count(*) / cardinality($2::text[]))::int FROM got`, leaseTable, leaseTTL.Milliseconds())

// releaseSQL ends the lease of holder $2 on the names $1.
const releaseSQL = `UPDATE ` + leaseTable + ` SET held_until = '-infinity' WHERE role = ANY($1::text[]) AND holder = $2`

// acquireArgs are acquireSQL's arguments for l.
func (l *leaseLock) acquireArgs(use bool) []any { return []any{l.holder, l.names, use} }

// isLeaseHeld reports whether err is acquireSQL's "held by another" failure.
func isLeaseHeld(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == sqlstateDivisionByZero
}

// lockRoles takes the lease and runs then in the same implicit transaction:
// one pipeline.
func (d *postgres) lockRoles(ctx context.Context, names []string, then *pgx.Batch) (roleLock, error) {
	l := d.newLease(names)
	b := &pgx.Batch{}
	b.Queue(acquireSQL, l.acquireArgs(true)...)
	b.QueuedQueries = append(b.QueuedQueries, then.QueuedQueries...)
	err := d.p.adminPool.SendBatch(ctx, b).Close()
	if isLeaseHeld(err) {
		return nil, fmt.Errorf("%w: %w", errLockHeld, err)
	}
	if err != nil {
		l.abandon()
		return nil, err
	}
	return l, nil
}

// tryLease takes the lease of one role without waiting and without
// marking it used; ok is false when another holder has it.
func (d *postgres) tryLease(ctx context.Context, name string) (l *leaseLock, ok bool, err error) {
	l = d.newLease([]string{name})
	_, err = d.p.adminPool.Exec(ctx, acquireSQL, l.acquireArgs(false)...)
	switch {
	case isLeaseHeld(err):
		return nil, false, nil
	case err != nil:
		l.abandon()
		return nil, false, backendErr("lock role", err)
	}
	return l, true, nil
}

// unlock ends the lease. A release that fails is tried again, with a
// growing pause, until it succeeds, the Provisioner closes, or the lease
// has expired by itself (leaseTTL after it was taken): a release lost to a
// slow moment (an admin pool exhausted under load, a backend restart) would
// otherwise lock the role, and refuse every login of its identity, for up to
// leaseTTL. When the admin connection was dead (the backend restarted, say:
// its idle siblings are dead too), the pools are reset first. Rotations of
// the same role in this process wait for unlock to return.
func (l *leaseLock) unlock() {
	pause := 50 * time.Millisecond
	for attempt := 1; ; attempt++ {
		err := l.release()
		if err == nil {
			if attempt > 1 {
				l.d.p.log.Info("released role lease after retrying", "roles", l.names, "attempts", attempt)
			}
			return
		}
		if l.d.p.isClosed() || time.Now().Add(pause).After(l.expires) {
			l.d.p.log.Warn("could not release role lease; it expires by itself", "roles", l.names,
				"expires_in", time.Until(l.expires).Round(time.Second), "attempts", attempt, "err", err)
			return
		}
		if attempt == 1 {
			l.d.p.log.Warn("could not release role lease; retrying", "roles", l.names, "err", err)
		}
		time.Sleep(pause)
		pause = min(2*pause, 2*time.Second)
	}
}

// abandon releases, in the background, a lease whose acquiring statement
// failed without saying the lease is held. The server may have committed
// the lease before the failure reached us (the context ended, the
// connection broke after the Sync); releasing what was never taken
// matches no row and costs one statement. Cleanup waits for it like any
// release.
func (l *leaseLock) abandon() { l.d.p.unlockAsync(l, make(chan struct{})) }

// release runs releaseSQL once, within unlockTimeout, resetting the pools
// when the connection it used was dead.
func (l *leaseLock) release() error {
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	_, err := l.d.p.adminPool.Exec(ctx, releaseSQL, l.names, l.holder)
	if err != nil && ctx.Err() == nil && isDeadConn(err) {
		l.d.p.resetPools()
	}
	return err
}
