package provision

import (
	"context"
	"errors"
	"fmt"
	"net"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// Finding is one problem Check found with the admin role's rights, and the
// statement (run by a superuser or the object's owner) that fixes it.
type Finding struct {
	Problem string // e.g. "admin cannot grant readonly on table private.secrets in database appdb"
	Fix     string // e.g. "GRANT ALL ON TABLE private.secrets TO waypoint_admin WITH GRANT OPTION"
}

type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// dbObject is a schema, table or sequence the checks report.
type dbObject struct {
	Kind, Schema, Name string // Kind: "schema", "table" or "sequence"; Name "" for a schema
}

// String returns e.g. "table private.secrets" or "schema app".
func (o dbObject) String() string {
	if o.Kind == "schema" {
		return "schema " + o.Schema
	}
	return o.Kind + " " + o.Schema + "." + o.Name
}

// missingObjects lists up to limit objects (0 = all) of schema on which role
// ("" = current_user) lacks preset's privileges (with grantOption: the right
// to grant them), tables and sequences first.
func missingObjects(ctx context.Context, q querier, role, schema string, preset authz.Preset, grantOption bool, limit int) ([]dbObject, error) {
	sql, err := plan.MissingQuery(preset, grantOption)
	if err != nil {
		return nil, err
	}
	rows, err := q.Query(ctx, sql, role, schema)
	if err != nil {
		return nil, backendErr("check privileges", err)
	}
	var out []dbObject
	var o dbObject
	_, err = pgx.ForEachRow(rows, []any{&o.Kind, &o.Schema, &o.Name}, func() error {
		if limit == 0 || len(out) < limit {
			out = append(out, o)
		}
		return nil
	})
	if err != nil {
		return nil, backendErr("check privileges", err)
	}
	return out, nil
}

// Check reports what the admin role lacks to provision roles for databases
// and schemas: LOGIN and CREATEROLE, CONNECT on each database, each schema's
// existence, and every object in each schema that the admin cannot grant a
// preset on, with the weakest preset it cannot grant. Schemas default to
// ["public"]. An error means the check itself could not run.
func (p *Provisioner) Check(ctx context.Context, databases []string, schemas []string) ([]Finding, error) {
	if len(schemas) == 0 {
		schemas = []string{"public"}
	}
	var admin string
	var login, createRole, super bool
	err := p.adminPool.QueryRow(ctx, `SELECT rolname::text, rolcanlogin, rolcreaterole, rolsuper FROM pg_roles WHERE rolname = current_user`).
		Scan(&admin, &login, &createRole, &super)
	if err != nil {
		return nil, backendErr("read admin role", err)
	}
	var out []Finding
	if !login {
		out = append(out, Finding{"admin role " + admin + " lacks LOGIN", "ALTER ROLE " + plan.QuoteIdent(admin) + " LOGIN"})
	}
	if !createRole && !super {
		out = append(out, Finding{"admin role " + admin + " lacks CREATEROLE", "ALTER ROLE " + plan.QuoteIdent(admin) + " CREATEROLE"})
	}
	for _, db := range databases {
		found, err := p.checkDatabase(ctx, admin, db, schemas)
		if err != nil {
			return out, err
		}
		out = append(out, found...)
	}
	return out, nil
}

func (p *Provisioner) checkDatabase(ctx context.Context, admin, db string, schemas []string) ([]Finding, error) {
	pool, err := p.workPool(db)
	if err != nil {
		return nil, err
	}
	conn, err := pool.Acquire(ctx)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == sqlstateInvalidCatalogName:
		p.dropPool(db, pool)
		return []Finding{{
			Problem: fmt.Sprintf("database %s does not exist", db),
			Fix:     fmt.Sprintf("CREATE DATABASE %s, or stop naming it", plan.QuoteIdent(db)),
		}}, nil
	case errors.As(err, &pgErr) && pgErr.Code == sqlstateInsufficientPrivilege:
		return []Finding{{
			Problem: fmt.Sprintf("admin cannot connect to database %s: %s", db, pgErr.Message),
			Fix:     fmt.Sprintf("GRANT CONNECT ON DATABASE %s TO %s", plan.QuoteIdent(db), plan.QuoteIdent(admin)),
		}}, nil
	case err != nil:
		return nil, backendErr("connect to database "+db, err)
	}
	defer conn.Release()
	var out []Finding
	for _, s := range schemas {
		var exists bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", s).Scan(&exists); err != nil {
			return out, backendErr("check schema", err)
		}
		if !exists {
			out = append(out, Finding{Problem: fmt.Sprintf("schema %s does not exist in database %s", s, db),
				Fix: fmt.Sprintf("CREATE SCHEMA %s (in database %s), or remove it from the grant", plan.QuoteIdent(s), db)})
			continue
		}
		seen := map[string]bool{}
		for _, preset := range []authz.Preset{authz.Readonly, authz.Readwrite, authz.Admin} {
			objs, err := missingObjects(ctx, conn, "", s, preset, true, 0)
			if err != nil {
				return out, err
			}
			for _, o := range objs {
				if !seen[o.String()] {
					seen[o.String()] = true
					out = append(out, Finding{
						Problem: fmt.Sprintf("admin cannot grant %s on %s in database %s", preset, o, db),
						Fix:     fixFor(o, admin),
					})
				}
			}
		}
	}
	return out, nil
}

// fixFor is the statement that lets admin grant on o.
func fixFor(o dbObject, admin string) string {
	a := plan.QuoteIdent(admin)
	switch o.Kind {
	case "schema":
		return fmt.Sprintf("GRANT USAGE, CREATE ON SCHEMA %s TO %s WITH GRANT OPTION", plan.QuoteIdent(o.Schema), a)
	case "sequence":
		return fmt.Sprintf("GRANT ALL ON SEQUENCE %s TO %s WITH GRANT OPTION", plan.QuoteQualified(o.Schema, o.Name), a)
	}
	name := plan.QuoteQualified(o.Schema, o.Name)
	return fmt.Sprintf("GRANT ALL ON TABLE %s TO %s WITH GRANT OPTION (or ALTER TABLE %s OWNER TO %s)", name, a, name, a)
}

// Databases lists, sorted, the databases Check should look at by default:
// every database that is not a template and accepts connections (the admin
// can see them all in pg_database, whether or not it may connect).
func (p *Provisioner) Databases(ctx context.Context) ([]string, error) {
	rows, err := p.adminPool.Query(ctx, "SELECT datname::text FROM pg_database WHERE NOT datistemplate AND datallowconn ORDER BY 1")
	if err != nil {
		return nil, backendErr("list databases", err)
	}
	dbs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, backendErr("list databases", err)
	}
	return dbs, nil
}

// DescribeLoginError explains an error from New (a failed admin login, or
// an admin that cannot set up Waypoint's state: no CREATEROLE, no CREATE on
// the admin database) for an operator: what failed, and what to check,
// e.g. ("password authentication failed", "check admin_password"). It
// never includes the password.
func DescribeLoginError(err error) (what, hint string) {
	what, hint = err.Error(), "check backend, admin_user and admin_password"
	var pgErr *pgconn.PgError
	var netErr net.Error
	var perr *Error
	switch {
	case errors.As(err, &perr) && (perr.Kind == CannotGrant || perr.Kind == Clash):
		what, hint = perr.Msg, "the admin logged in but lacks what Waypoint needs at start; see \"The admin role\" in docs/grants-and-provisioning.md"
	case errors.As(err, &pgErr) && pgErr.Code == "28P01":
		what, hint = "password authentication failed", "check admin_password"
	case errors.As(err, &pgErr) && pgErr.Code == "28000":
		what, hint = pgErr.Message, "check admin_user and the server's pg_hba.conf"
	case errors.As(err, &pgErr) && pgErr.Code == sqlstateInvalidCatalogName:
		what, hint = pgErr.Message, "check admin_database"
	case errors.As(err, &pgErr):
		what = pgErr.Message + " (SQLSTATE " + pgErr.Code + ")"
	case errors.As(err, &netErr), errors.Is(err, context.DeadlineExceeded):
		what, hint = "cannot reach the server: "+err.Error(), "check backend and that PostgreSQL listens there"
	}
	return what, hint
}
