package provision

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// unlockTimeout bounds releasing a role lock; on timeout the connection is
// closed, which releases the lock too.
const unlockTimeout = 5 * time.Second

// roleLock is a cross-instance lock on one identity's role names, held on a
// dedicated admin-database connection from before the password rotation
// until the last Lease of the rotation is released.
//
// PostgreSQL: session-level advisory locks on lockKey of each candidate role
// name (primary first). Cleanup try-locks the one name it drops, so an
// Ensure and a Cleanup of the same role never overlap.
type roleLock struct {
	conn *pgxpool.Conn
	keys []int64
	tx   pgx.Tx // CockroachDB: the transaction holding the lock rows
	// commit: unlock commits tx (Cleanup's record delete) instead of
	// rolling it back.
	commit bool
}

// lockRoles acquires the locks for names on a connection from p.locks and
// returns it; then, if not nil, is sent in the same round trip and runs
// once the locks are held. Waiting is bounded by ctx.
func (p *Provisioner) lockRoles(ctx context.Context, names []string, then *pgx.Batch) (*roleLock, error) {
	conn, err := p.locks.Acquire(ctx)
	if err != nil {
		return nil, backendErr("acquire admin connection", err)
	}
	l := &roleLock{conn: conn}
	if p.crdb {
		err = l.lockCRDB(ctx, names, then)
	} else {
		err = l.lockPG(ctx, names, then)
	}
	if err != nil {
		l.discard()
		return nil, backendErr("lock role", err)
	}
	return l, nil
}

func (l *roleLock) lockPG(ctx context.Context, names []string, then *pgx.Batch) error {
	b := &pgx.Batch{}
	for _, n := range names {
		k := lockKey(n)
		l.keys = append(l.keys, k)
		b.Queue("SELECT pg_advisory_lock($1)", k)
	}
	if then != nil {
		b.QueuedQueries = append(b.QueuedQueries, then.QueuedQueries...)
	}
	return l.conn.SendBatch(ctx, b).Close()
}

// tryLockRole takes the lock for one role without waiting; ok is false when
// another session holds it.
func (p *Provisioner) tryLockRole(ctx context.Context, name string) (l *roleLock, ok bool, err error) {
	conn, err := p.locks.Acquire(ctx)
	if err != nil {
		return nil, false, backendErr("acquire admin connection", err)
	}
	l = &roleLock{conn: conn}
	if p.crdb {
		ok, err = l.tryLockCRDB(ctx, name)
	} else {
		k := lockKey(name)
		err = conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", k).Scan(&ok)
		if ok {
			l.keys = []int64{k}
		}
	}
	if err != nil || !ok {
		l.discard()
		if err != nil {
			return nil, false, backendErr("lock role", err)
		}
		return nil, false, nil
	}
	return l, true, nil
}

// unlock releases the locks and returns the connection to the pool, or
// closes it when unlocking fails (closing a session releases its locks).
func (l *roleLock) unlock() {
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	var err error
	switch {
	case l.tx != nil && l.commit:
		err = l.tx.Commit(ctx)
	case l.tx != nil:
		err = l.tx.Rollback(ctx)
	default:
		b := &pgx.Batch{}
		for i := len(l.keys) - 1; i >= 0; i-- {
			b.Queue("SELECT pg_advisory_unlock($1)", l.keys[i])
		}
		err = l.conn.SendBatch(ctx, b).Close()
	}
	if err != nil {
		l.discard()
		return
	}
	l.conn.Release()
}

// discard closes the connection (dropping any locks it may hold, even one
// acquired just as ctx expired) and gives the slot back to the pool.
func (l *roleLock) discard() {
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	_ = l.conn.Conn().Close(ctx)
	l.conn.Release()
}
