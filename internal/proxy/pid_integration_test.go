package proxy_test

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/waypoint-proxy/waypoint/internal/pgtest"
)

// TestIntegration_Proxy_BackendPID: through the tailnet, the process ID a
// driver is given in BackendKeyData is the backend's real one, so
// pg_backend_pid(), a NOTIFY's sender pid and pg_terminate_backend agree
// with it; the key still cancels the session's query, and the same process
// ID with a wrong secret (another session's, or a near miss) cancels
// nothing, even from the session's own node.
func TestIntegration_Proxy_BackendPID(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		r := newRig(t, pg, nil)
		alice := r.client("alice@example.com", "laptop", readonlyAppdb)
		conn := r.mustConnect(alice, "appdb", nil)
		ctx := context.Background()
		pid := conn.PgConn().PID()

		t.Run("driver pid is pg_backend_pid", func(t *testing.T) {
			var backendPID uint32
			if err := conn.QueryRow(ctx, "select pg_backend_pid()").Scan(&backendPID); err != nil {
				t.Fatal(err)
			}
			if pid != backendPID {
				t.Fatalf("driver reports pid %d, pg_backend_pid() = %d; want equal", pid, backendPID)
			}
		})

		t.Run("self NOTIFY carries the pid", func(t *testing.T) {
			if _, err := conn.Exec(ctx, "listen wp_self"); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, "notify wp_self, 'hello'"); err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			n, err := conn.WaitForNotification(wctx)
			if err != nil {
				t.Fatalf("no notification: %v", err)
			}
			if n.PID != pid || n.Channel != "wp_self" || n.Payload != "hello" {
				t.Fatalf("got notification %+v, want channel wp_self, payload hello, pid %d (our own)", *n, pid)
			}
			if _, err := conn.Exec(ctx, "unlisten wp_self"); err != nil {
				t.Fatal(err)
			}
		})

		t.Run("cancel with the issued key", func(t *testing.T) {
			done := runQuery(conn, "select pg_sleep(30)")
			waitPgSleep(t, pg, pid)
			sendCancel(t, r, alice, pid, conn.PgConn().SecretKey())
			select {
			case err := <-done:
				if got := sqlstate(err); got != "57014" {
					t.Fatalf("got %v, want 57014 query_canceled", err)
				}
			case <-time.After(20 * time.Second):
				t.Fatal("pg_sleep(30) still running 20 s after a CancelRequest with the issued key")
			}
		})

		t.Run("pid with a wrong secret refused", func(t *testing.T) {
			other := r.mustConnect(alice, "appdb", nil)
			secret := binary.BigEndian.Uint32(conn.PgConn().SecretKey())
			wrong := []struct {
				name   string
				secret []byte
			}{
				{"another session's secret", other.PgConn().SecretKey()},
				{"secret off by one bit", binary.BigEndian.AppendUint32(nil, secret^1)},
			}
			for _, w := range wrong {
				t.Run(w.name, func(t *testing.T) {
					done := runQuery(conn, longSleepSQL)
					// The next subtest uses conn: even when this one fails
					// before it took the query's result, the query must
					// have ended first.
					taken := false
					t.Cleanup(func() {
						if !taken {
							pg.Exec(t, "postgres", "select pg_cancel_backend($1)", int32(pid))
							drain(done)
						}
					})
					started := waitPgSleep(t, pg, pid)
					for range 3 {
						sendCancel(t, r, alice, pid, w.secret)
					}
					requireNotCancelled(t, pg, pid, started, done)
					taken = true
				})
			}
		})

		t.Run("pg_terminate_backend of the driver pid", func(t *testing.T) {
			victim := r.mustConnect(alice, "appdb", nil)
			var ok bool
			if err := conn.QueryRow(ctx, "select pg_terminate_backend($1)", int32(victim.PgConn().PID())).Scan(&ok); err != nil {
				t.Fatalf("pg_terminate_backend(%d): %v", victim.PgConn().PID(), err)
			}
			if !ok {
				t.Fatalf("pg_terminate_backend(%d) = false, want true", victim.PgConn().PID())
			}
			pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := victim.Ping(pctx); err == nil {
				t.Fatal("the terminated session still answers")
			}
		})
	})
}

// drain waits for runQuery's result if nobody took it yet.
func drain(done <-chan error) {
	select {
	case <-done:
	case <-time.After(time.Minute):
	}
}

// runQuery runs sql on conn in the background; the channel gets its error.
func runQuery(conn *pgx.Conn, sql string) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := conn.Exec(context.Background(), sql)
		done <- err
	}()
	return done
}

// sleepingSQL finds the backend with process ID $1 inside pg_sleep and
// returns when its query started. "active" alone is not enough: with the
// extended protocol a backend is active from Parse on, and a cancel that
// arrives between Parse and Execute is lost.
const sleepingSQL = `SELECT query_start FROM pg_stat_activity
 WHERE pid = $1 AND state = 'active' AND wait_event = 'PgSleep'`

// waitPgSleep waits until the backend with process ID pid is inside
// pg_sleep, so that a CancelRequest sent now reaches a running query, and
// returns the query's start time (see requireNotCancelled).
func waitPgSleep(t *testing.T, pg *pgtest.Cluster, pid uint32) time.Time {
	t.Helper()
	admin := pg.Super(t, "postgres")
	var started time.Time
	waitFor(t, fmt.Sprintf("backend %d to be inside pg_sleep", pid), func() bool {
		err := admin.QueryRow(context.Background(), sleepingSQL, int32(pid)).Scan(&started)
		return err == nil
	})
	return started
}

// longSleepSQL is the query of a negative cancel test: long enough that it
// is still running however slowly the forged cancels travel, since
// requireNotCancelled ends it itself.
const longSleepSQL = "select pg_sleep(120)"

// requireNotCancelled is the end of a negative cancel test: cancels were
// sent to backend pid while it was in the pg_sleep of longSleepSQL that
// began at started (waitPgSleep), and none may have cancelled it. The
// backend must still be in that very sleep; the test then ends the query
// with pg_cancel_backend and takes its result from done, so that the
// connection is free again. A query that failed (the forged cancel worked)
// or ended (the test proved nothing) fails the test.
func requireNotCancelled(t *testing.T, pg *pgtest.Cluster, pid uint32, started time.Time, done <-chan error) {
	t.Helper()
	super := pg.Super(t, "postgres")
	var now time.Time
	if err := super.QueryRow(context.Background(), sleepingSQL, int32(pid)).Scan(&now); err != nil || !now.Equal(started) {
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("the query failed after the CancelRequests: %v", err)
			}
			t.Fatalf("backend %d's pg_sleep ended before the CancelRequests could reach it: the test proves nothing", pid)
		case <-time.After(30 * time.Second):
			t.Fatalf("backend %d left the pg_sleep that began at %v, but its query has not returned", pid, started)
		}
	}
	var ok bool
	if err := super.QueryRow(context.Background(), "select pg_cancel_backend($1)", int32(pid)).Scan(&ok); err != nil || !ok {
		t.Fatalf("pg_cancel_backend(%d) = %v, %v", pid, ok, err)
	}
	select {
	case err := <-done:
		if pgErr, isPG := errors.AsType[*pgconn.PgError](err); !isPG || pgErr.Code != "57014" {
			t.Fatalf("after pg_cancel_backend the query returned %v, want 57014", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the query still runs 30 s after pg_cancel_backend")
	}
}
