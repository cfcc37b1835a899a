package pgwiretest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// TestServer_ChecksPasswordsAndAnswersScript: the fake lets in only a role
// with the password it was told, answers a scripted query, and cancels a
// query scripted to run until cancelled.
func TestServer_ChecksPasswordsAndAnswersScript(t *testing.T) {
	s := StartServer(t, func(sess *Session, q string) (Result, bool) {
		switch q {
		case "select current_user":
			return Result{Columns: []string{"current_user"}, Rows: [][]string{{sess.User()}}}, true
		case "select pg_sleep(30)":
			return Result{UntilCancelled: true}, true
		}
		return Result{}, false
	})
	s.AllowLogin("wp_alice", "right")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	connect := func(user, password string) (*pgconn.PgConn, error) {
		return pgconn.Connect(ctx, fmt.Sprintf("postgres://%s:%s@%s/appdb?sslmode=disable", user, password, s.Addr()))
	}

	for _, bad := range [][2]string{{"wp_alice", "wrong"}, {"wp_bob", "right"}} {
		_, err := connect(bad[0], bad[1])
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "28P01" {
			t.Errorf("login %s/%s: got %v, want 28P01", bad[0], bad[1], err)
		}
	}
	if got := s.Refused(); !slices.Equal(got, []string{"wp_alice", "wp_bob"}) {
		t.Errorf("refused %v, want [wp_alice wp_bob]", got)
	}

	conn, err := connect("wp_alice", "right")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	res, err := conn.Exec(ctx, "select current_user").ReadAll()
	if err != nil || len(res) != 1 || len(res[0].Rows) != 1 || string(res[0].Rows[0][0]) != "wp_alice" {
		t.Fatalf("select current_user: got %+v, %v; want wp_alice", res, err)
	}
	sessions := s.Sessions()
	if len(sessions) != 1 || sessions[0].PID != conn.PID() {
		t.Fatalf("sessions %+v, want one with the client's process ID %d", sessions, conn.PID())
	}
	done := make(chan error, 1)
	go func() { _, err := conn.Exec(ctx, "select pg_sleep(30)").ReadAll(); done <- err }()
	if err := conn.CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	var pe *pgconn.PgError
	if err := <-done; !errors.As(err, &pe) || pe.Code != "57014" {
		t.Errorf("cancelled query: got %v, want 57014", err)
	}
	if !sessions[0].Cancelled() || s.CancelRequests() != 1 {
		t.Errorf("session cancelled %v after %d cancel requests, want true after 1", sessions[0].Cancelled(), s.CancelRequests())
	}
}
