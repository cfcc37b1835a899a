package pgtest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// opTimeout bounds each helper's database work.
const opTimeout = time.Minute

// quoteIdent quotes a SQL identifier.
func quoteIdent(name string) string { return pgx.Identifier{name}.Sanitize() }

// quoteLiteral quotes a SQL string literal (standard_conforming_strings on).
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// connectSocket connects as the superuser over the trusted Unix socket.
func (c *Cluster) connectSocket(ctx context.Context, database string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, c.srv.SocketConnString(c.SuperUser, database))
	if err != nil {
		return nil, fmt.Errorf("pgtest: connect as superuser to %q: %w", database, err)
	}
	return conn, nil
}

// Super returns a superuser connection to database over the cluster's Unix
// socket. It is closed by tb.Cleanup; the caller may close it earlier.
func (c *Cluster) Super(tb testing.TB, database string) *pgx.Conn {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	conn, err := c.connectSocket(ctx, database)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// Exec runs sql with args as the superuser in database, on a connection of
// its own; it calls tb.Fatal on error.
func (c *Cluster) Exec(tb testing.TB, database, sql string, args ...any) {
	tb.Helper()
	if err := c.exec(database, sql, args...); err != nil {
		tb.Fatal(err)
	}
}

// exec is Exec returning its error.
func (c *Cluster) exec(database, sql string, args ...any) error {
	return c.withSuper(database, func(ctx context.Context, conn *pgx.Conn) error {
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			return fmt.Errorf("pgtest: exec in %q: %w%s\n%s", database, err, pgDetail(err), sql)
		}
		return nil
	})
}

// withSuper runs fn on a superuser connection of its own to database,
// everything within opTimeout.
func (c *Cluster) withSuper(database string, fn func(context.Context, *pgx.Conn) error) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	conn, err := c.connectSocket(ctx, database)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return fn(ctx, conn)
}

// pgDetail returns the DETAIL of a server error, for messages (pgx's
// PgError.Error leaves it out), or "".
func pgDetail(err error) string {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok && pgErr.Detail != "" {
		return "\nDETAIL: " + pgErr.Detail
	}
	return ""
}

// RoleExists reports whether the role exists.
func (c *Cluster) RoleExists(tb testing.TB, role string) bool {
	tb.Helper()
	var exists bool
	c.queryRow(tb, "SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)", []any{role}, &exists)
	return exists
}

// Roles returns the names of the roles starting with prefix, sorted
// bytewise. An empty prefix lists every role.
func (c *Cluster) Roles(tb testing.TB, prefix string) []string {
	tb.Helper()
	var roles []string
	c.queryRow(tb, `SELECT coalesce(array_agg(rolname ORDER BY rolname COLLATE "C"), '{}')
		FROM pg_roles WHERE starts_with(rolname, $1)`, []any{prefix}, &roles)
	return roles
}

// queryRow scans one row of a superuser query in database "postgres".
func (c *Cluster) queryRow(tb testing.TB, sql string, args []any, dest ...any) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	conn, err := c.connectSocket(ctx, "postgres")
	if err != nil {
		tb.Fatal(err)
	}
	defer conn.Close(context.Background())
	if err := conn.QueryRow(ctx, sql, args...).Scan(dest...); err != nil {
		tb.Fatalf("pgtest: query: %v\n%s", err, sql)
	}
}

// ServerLog returns the server log written so far. With
// Options.LogStatements it includes every statement; each line carries
// user@database after the timestamp and PID.
func (c *Cluster) ServerLog(tb testing.TB) string {
	tb.Helper()
	text, err := c.srv.ReadLog()
	if err != nil {
		tb.Fatal(err)
	}
	return text
}
