package provision

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// setupState makes sure, once at start, that the admin database has
// Waypoint's coordination schema (owned by the admin, nobody else has any
// privilege on it) with its tables, and that the plan.UsersGroup role exists.
// Concurrent starts of several instances are fine.
func (p *Provisioner) setupState(ctx context.Context) error {
	// The group first: it needs CREATEROLE, the admin's most basic right.
	if err := p.ensureUsersGroup(ctx); err != nil {
		return err
	}
	if err := p.ensureStateSchema(ctx); err != nil {
		return err
	}
	for _, sql := range p.dialect.stateTables() {
		if _, err := p.adminPool.Exec(ctx, sql); err != nil && !isDuplicate(err) {
			return backendErr("create Waypoint's state tables in schema "+stateSchema+" of the admin database", err)
		}
	}
	return nil
}

// ensureStateSchema creates stateSchema in the admin database, or checks
// that the existing one is the admin's and private.
func (p *Provisioner) ensureStateSchema(ctx context.Context) error {
	var ours, private bool
	err := p.adminPool.QueryRow(ctx, `SELECT n.nspowner = (SELECT oid FROM pg_roles WHERE rolname = current_user),
       NOT EXISTS (SELECT 1 FROM aclexplode(n.nspacl) a WHERE a.grantee <> n.nspowner)
  FROM pg_namespace n WHERE n.nspname = $1`, stateSchema).Scan(&ours, &private)
	if errors.Is(err, pgx.ErrNoRows) {
		_, err = p.adminPool.Exec(ctx, "CREATE SCHEMA "+plan.QuoteIdent(stateSchema))
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == sqlstateInsufficientPrivilege {
			return &Error{Kind: CannotGrant, Object: "database " + p.adminDB, Err: err,
				Msg: fmt.Sprintf("the admin role needs to create schema %s in the admin database once: GRANT CREATE ON DATABASE %s TO %s, or have a superuser run CREATE SCHEMA %s AUTHORIZATION %s",
					stateSchema, plan.QuoteIdent(p.adminDB), plan.QuoteIdent(p.baseConfig.ConnConfig.User), stateSchema, plan.QuoteIdent(p.baseConfig.ConnConfig.User))}
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

// ensureUsersGroup creates the plan.UsersGroup role, or checks that the existing
// one cannot log in.
func (p *Provisioner) ensureUsersGroup(ctx context.Context) error {
	name := plan.UsersGroup(p.opts.Prefix)
	var canLogin bool
	err := p.adminPool.QueryRow(ctx, "SELECT rolcanlogin FROM pg_roles WHERE rolname = $1", name).Scan(&canLogin)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		b := &pgx.Batch{}
		for _, sql := range p.dialect.createUsersGroup(name) {
			b.Queue(sql)
		}
		err := p.adminPool.SendBatch(ctx, b).Close()
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == sqlstateInsufficientPrivilege {
			return &Error{Kind: CannotGrant, Object: plan.ObjectCreateRole, Err: err,
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
	pgErr, ok := errors.AsType[*pgconn.PgError](err)
	return ok && slices.Contains([]string{sqlstateDuplicateObject, sqlstateUniqueViolation, sqlstateDuplicateSchema, sqlstateDuplicateTable}, pgErr.Code)
}
