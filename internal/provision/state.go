package provision

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// UsersGroup is the NOLOGIN group every role Waypoint creates is a member
// of: <prefix>users. It holds no privileges; it exists so that operators
// can confine Waypoint's roles in pg_hba.conf, e.g.
//
//	host all +wp_users 10.0.0.5/32 scram-sha-256
//	host all +wp_users 0.0.0.0/0   reject
func UsersGroup(prefix string) string { return orDefault(prefix) + "users" }

// usersRecord is the comment on the UsersGroup role.
const usersRecord = `{"waypoint":1,"kind":"users"}`

// setupState makes sure, once at start, that the admin database has
// Waypoint's coordination schema (owned by the admin, nobody else has any
// privilege on it) with its tables, and that the UsersGroup role exists.
// Concurrent starts of several instances are fine.
func (p *Provisioner) setupState(ctx context.Context) error {
	// The group first: it needs CREATEROLE, the admin's most basic right.
	if err := p.ensureUsersGroup(ctx); err != nil {
		return err
	}
	if err := p.ensureStateSchema(ctx); err != nil {
		return err
	}
	tables := []string{stateSetupSQL}
	if p.crdb {
		tables = crdbStateSetupSQL
	}
	for _, sql := range tables {
		if _, err := p.admin.Exec(ctx, sql); err != nil && !isDuplicate(err) {
			return backendErr("create Waypoint's state tables in schema "+stateSchema+" of the admin database", err)
		}
	}
	return nil
}

// ensureStateSchema creates stateSchema in the admin database, or checks
// that the existing one is the admin's and private.
func (p *Provisioner) ensureStateSchema(ctx context.Context) error {
	var ours, private bool
	err := p.admin.QueryRow(ctx, `SELECT n.nspowner = (SELECT oid FROM pg_roles WHERE rolname = current_user),
       NOT EXISTS (SELECT 1 FROM aclexplode(n.nspacl) a WHERE a.grantee <> n.nspowner)
  FROM pg_namespace n WHERE n.nspname = $1`, stateSchema).Scan(&ours, &private)
	if errors.Is(err, pgx.ErrNoRows) {
		_, err = p.admin.Exec(ctx, "CREATE SCHEMA "+quoteIdent(stateSchema))
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == sqlstateInsufficientPrivilege {
			return &Error{Kind: CannotGrant, Object: "database " + p.adminDB, Err: err,
				Msg: fmt.Sprintf("the admin role needs to create schema %s in the admin database once: GRANT CREATE ON DATABASE %s TO %s, or have a superuser run CREATE SCHEMA %s AUTHORIZATION %s",
					stateSchema, quoteIdent(p.adminDB), quoteIdent(p.baseConfig.ConnConfig.User), stateSchema, quoteIdent(p.baseConfig.ConnConfig.User))}
		}
		if err != nil && !isDuplicate(err) {
			return backendErr("create schema "+stateSchema+" in the admin database", err)
		}
		return nil
	}
	if err != nil {
		return backendErr("look up schema "+stateSchema+" in the admin database", err)
	}
	if !ours {
		return &Error{Kind: Clash, Object: "schema " + stateSchema,
			Msg: "the admin database has a schema " + stateSchema + " not owned by the admin role; Waypoint keeps its locks there and must own it"}
	}
	if !private {
		return &Error{Kind: Clash, Object: "schema " + stateSchema,
			Msg: "other roles hold privileges on schema " + stateSchema + " of the admin database; revoke them (Waypoint's locks must be out of every user's reach)"}
	}
	return nil
}

// ensureUsersGroup creates the UsersGroup role, or checks that the existing
// one cannot log in.
func (p *Provisioner) ensureUsersGroup(ctx context.Context) error {
	name := UsersGroup(p.opts.Prefix)
	var canLogin bool
	err := p.admin.QueryRow(ctx, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", name).Scan(&canLogin)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		b := &pgx.Batch{}
		b.Queue("CREATE ROLE " + quoteIdent(name) + " NOLOGIN")
		if !p.crdb {
			b.Queue("COMMENT ON ROLE " + quoteIdent(name) + " IS " + quoteLiteral(usersRecord))
		}
		err := p.admin.SendBatch(ctx, b).Close()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == sqlstateInsufficientPrivilege {
			return &Error{Kind: CannotGrant, Object: objectCreateRole, Err: err,
				Msg: "the admin role may not create roles (it needs CREATEROLE); could not create group role " + name}
		}
		if err != nil && !isDuplicate(err) {
			return backendErr("create group role "+name, err)
		}
		return nil
	case err != nil:
		return backendErr("look up group role "+name, err)
	case canLogin:
		return &Error{Kind: Clash, Object: "role " + name, Msg: "the group every Waypoint role joins exists and can log in; it must be NOLOGIN"}
	}
	return nil
}

// isDuplicate reports whether err says the object already exists (another
// instance created it first).
func isDuplicate(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	switch pgErr.Code {
	case sqlstateDuplicateObject, sqlstateUniqueViolation, sqlstateDuplicateSchema, sqlstateDuplicateTable:
		return true
	}
	return false
}
