package pgdemo

import (
	"context"
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

const testTimeout = 2 * time.Minute

func TestQuoting(t *testing.T) {
	tests := []struct{ name, got, want string }{
		{"literal", quoteLiteral("it's"), "'it''s'"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s: got %s, want %s", tt.name, tt.got, tt.want)
		}
	}
}

// startOrSkip starts a demo server, skipping the test when PostgreSQL is not
// installed (failing it under CI=true).
func startOrSkip(t *testing.T, opts Options) *Server {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	s, err := Start(ctx, opts)
	if errors.Is(err, ErrNotInstalled) {
		testkit.SkipUnlessCI(t, err)
	}
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() { s.Stop() })
	return s
}

// adminConn logs in as the admin over TCP with the password, as Waypoint does.
func adminConn(t *testing.T, s *Server) *pgx.Conn {
	t.Helper()
	u := url.URL{Scheme: "postgres", User: url.UserPassword(AdminUser, s.AdminPassword), Host: s.Addr,
		Path: "/" + Database, RawQuery: "sslmode=disable"}
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, err := pgx.Connect(ctx, u.String())
	if err != nil {
		t.Fatalf("connect as %s: %v", AdminUser, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestStart_AdminOwnsDemoTable(t *testing.T) {
	s := startOrSkip(t, Options{})
	conn := adminConn(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	var owner string
	var createRole, super bool
	var rows int
	err := conn.QueryRow(ctx, `SELECT t.tableowner, r.rolcreaterole, r.rolsuper, (SELECT count(*) FROM public.notes)
		FROM pg_tables t, pg_roles r WHERE t.tablename = $1 AND r.rolname = current_user`, Table).Scan(&owner, &createRole, &super, &rows)
	if err != nil {
		t.Fatalf("query: %v", err)
	}
	if owner != AdminUser || !createRole || super || rows != 1 {
		t.Errorf("got owner %q, createrole %v, superuser %v, %d rows; want %q, true, false, 1", owner, createRole, super, rows, AdminUser)
	}
	dir := s.Dir
	if err := s.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after Stop: got %v for %s, want it removed", err, dir)
	}
	if err := s.Stop(); err != nil {
		t.Errorf("second Stop: got %v, want nil", err)
	}
}

func TestStart_ReusesGivenDir(t *testing.T) {
	// Not t.TempDir: its parent is private to this process's user, and the
	// postgres user must reach the directory when the test runs as root.
	parent, err := os.MkdirTemp("", "pgdemo-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(parent) })
	if err := os.Chmod(parent, 0o711); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(parent, "pg")
	first := startOrSkip(t, Options{Dir: dir})
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	if _, err := adminConn(t, first).Exec(ctx, "INSERT INTO notes (body) VALUES ('kept')"); err != nil {
		t.Fatalf("insert: %v", err)
	}
	if err := first.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	second := startOrSkip(t, Options{Dir: dir})
	if second.AdminPassword == first.AdminPassword {
		t.Errorf("AdminPassword: got the same on restart, want a new one")
	}
	var n int
	if err := adminConn(t, second).QueryRow(ctx, "SELECT count(*) FROM notes WHERE body = 'kept'").Scan(&n); err != nil || n != 1 {
		t.Errorf("rows kept: got %d, %v; want 1", n, err)
	}
}
