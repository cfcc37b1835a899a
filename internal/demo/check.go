package demo

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// checkTimeout bounds one self-check step (connect and query).
const checkTimeout = 30 * time.Second

// sqlstateInsufficientPrivilege is PostgreSQL's "permission denied".
const sqlstateInsufficientPrivilege = "42501"

// check is one self-check step: it returns a short detail on success.
type check struct {
	name string
	run  func(ctx context.Context) (string, error)
}

// selfCheck runs what printTryIt suggests, through the users' local ports,
// printing ✓ or ✗ for each step. It reports whether all passed.
func (d *instance) selfCheck(ctx context.Context) bool {
	alice, bob := d.users[0], d.users[1]
	checks := []check{
		{"alice can INSERT into notes", func(ctx context.Context) (string, error) {
			var role string
			err := queryAs(ctx, alice.connString(""), "INSERT INTO notes (body) VALUES ('self-check: hello from alice') RETURNING author", &role)
			return "as " + role, err
		}},
		{"bob can SELECT from notes", func(ctx context.Context) (string, error) {
			var n int
			err := queryAs(ctx, bob.connString(""), "SELECT count(*) FROM notes", &n)
			return fmt.Sprintf("%d rows", n), err
		}},
		{"bob cannot INSERT", func(ctx context.Context) (string, error) {
			return wantDenied(queryAs(ctx, bob.connString(""), "INSERT INTO notes (body) VALUES ('self-check: bob') RETURNING id", new(int64)))
		}},
		{"alice with options=-c waypoint_presets=readonly cannot INSERT", func(ctx context.Context) (string, error) {
			return wantDenied(queryAs(ctx, alice.connString("readonly"), "INSERT INTO notes (body) VALUES ('self-check: alice, readonly') RETURNING id", new(int64)))
		}},
		{"bob with options=-c waypoint_presets=readwrite still cannot INSERT", func(ctx context.Context) (string, error) {
			return wantDenied(queryAs(ctx, bob.connString("readwrite"), "INSERT INTO notes (body) VALUES ('self-check: bob, readwrite') RETURNING id", new(int64)))
		}},
		{`\du lists the roles Waypoint provisioned`, func(ctx context.Context) (string, error) {
			var roles []string
			err := queryAs(ctx, alice.connString(""), `SELECT coalesce(array_agg(rolname ORDER BY rolname), '{}') FROM pg_roles WHERE rolname LIKE 'wp\_%'`, &roles)
			if err == nil && !(slices.Contains(roles, "wp_alice_laptop_demo") && slices.Contains(roles, "wp_bob_desktop_demo")) {
				err = fmt.Errorf("got roles %v, want wp_alice_laptop_demo and wp_bob_desktop_demo among them", roles)
			}
			return strings.Join(roles, ", "), err
		}},
	}
	fmt.Fprintln(d.out, "\nSelf-check, through the same local ports:")
	passed := 0
	for _, c := range checks {
		cctx, cancel := context.WithTimeout(ctx, checkTimeout)
		detail, err := c.run(cctx)
		cancel()
		if err != nil {
			fmt.Fprintf(d.out, "  ✗ %s: %v\n", c.name, err)
			continue
		}
		passed++
		fmt.Fprintf(d.out, "  ✓ %s (%s)\n", c.name, detail)
	}
	fmt.Fprintf(d.out, "%d of %d checks passed.\n", passed, len(checks))
	return passed == len(checks)
}

// queryAs connects with connString, runs sql and scans its one row into
// dest.
func queryAs(ctx context.Context, connString, sql string, dest ...any) error {
	conn, err := pgx.Connect(ctx, connString)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(ctx, sql).Scan(dest...)
}

// wantDenied turns the outcome of a statement that must be refused into a
// check result: success when PostgreSQL said exactly what the banner quotes
// (denied, SQLSTATE 42501).
func wantDenied(err error) (string, error) {
	if err == nil {
		return "", errors.New("it succeeded, want permission denied")
	}
	var pgErr interface {
		SQLState() string
		error
	}
	// pgconn's PgError reads "ERROR: <message> (SQLSTATE 42501)"; this package may
	// not import pgconn (archtest), so the message is matched in that text.
	if errors.As(err, &pgErr) && pgErr.SQLState() == sqlstateInsufficientPrivilege &&
		strings.Contains(pgErr.Error(), ": "+denied+" (SQLSTATE") {
		return pgErr.Error(), nil
	}
	return "", fmt.Errorf("got %w, want %q (SQLSTATE %s)", err, denied, sqlstateInsufficientPrivilege)
}
