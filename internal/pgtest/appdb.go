package pgtest

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// CreateAppDatabase creates database name, owned by the superuser, with a
// fixture for provisioning tests:
//
//   - public.items(id serial primary key, name text), 3 rows, and
//     public.audit_log(id serial, msg text), empty;
//   - schema app, owned by the admin, with app.orders(id serial primary key,
//     amount int), 2 rows;
//   - schema private with private.secrets(id serial primary key, secret
//     text), 1 row, owned by the superuser with no privilege for the admin
//     (the admin cannot grant on it);
//   - every table in public and app, and its sequence, owned by the admin,
//     so the admin can grant on them;
//   - the admin holds CONNECT, CREATE on the database and USAGE, CREATE on
//     schema public, all WITH GRANT OPTION.
//
// A second call with the same name on the same cluster does nothing. It is
// safe for concurrent use.
func (c *Cluster) CreateAppDatabase(tb testing.TB, name string) {
	tb.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.appDBs[name] {
		return
	}
	if err := c.createAppDatabase(name); err != nil {
		tb.Fatal(err)
	}
	c.appDBs[name] = true
}

// createAppDatabase creates the database and its fixture in one
// transaction (CREATE DATABASE itself cannot be in one).
func (c *Cluster) createAppDatabase(name string) error {
	if err := c.exec("postgres", "CREATE DATABASE "+quoteIdent(name)+" OWNER "+quoteIdent(c.SuperUser)); err != nil {
		return err
	}
	return c.withSuper(name, func(ctx context.Context, conn *pgx.Conn) error {
		// Simple protocol: several statements in one round trip, one
		// implicit transaction.
		if _, err := conn.PgConn().Exec(ctx, appFixtureSQL(name, c.AdminUser)).ReadAll(); err != nil {
			return fmt.Errorf("pgtest: create app fixture in %q: %w", name, err)
		}
		return nil
	})
}

// appFixtureSQL returns the statements that fill an app database.
func appFixtureSQL(database, admin string) string {
	r := strings.NewReplacer("{db}", quoteIdent(database), "{admin}", quoteIdent(admin))
	return r.Replace(`
GRANT CONNECT, CREATE ON DATABASE {db} TO {admin} WITH GRANT OPTION;
GRANT USAGE, CREATE ON SCHEMA public TO {admin} WITH GRANT OPTION;
CREATE TABLE public.items (id serial PRIMARY KEY, name text);
INSERT INTO public.items (name) VALUES ('apple'), ('banana'), ('cherry');
CREATE TABLE public.audit_log (id serial, msg text);
ALTER TABLE public.items OWNER TO {admin};
ALTER TABLE public.audit_log OWNER TO {admin};
CREATE SCHEMA app AUTHORIZATION {admin};
CREATE TABLE app.orders (id serial PRIMARY KEY, amount int);
INSERT INTO app.orders (amount) VALUES (100), (250);
ALTER TABLE app.orders OWNER TO {admin};
CREATE SCHEMA private;
CREATE TABLE private.secrets (id serial PRIMARY KEY, secret text);
INSERT INTO private.secrets (secret) VALUES ('the admin must not read this');
`)
}
