package pgdemo

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
)

// setupRoles creates the admin role if missing and gives it its attributes,
// CREATE on the admin database and this run's password. Statement logging is off for the session, so the
// password stays out of the server log.
var setupRoles = []string{
	"SET log_statement = 'none'",
	`DO $$ BEGIN
	   IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '` + AdminUser + `') THEN
	     CREATE ROLE ` + AdminUser + `;
	   END IF;
	 END $$`,
	// Waypoint keeps its leases in schema "waypoint" of the admin database.
	"GRANT CREATE ON DATABASE postgres TO " + AdminUser,
	"ALTER ROLE " + AdminUser + " LOGIN CREATEROLE NOSUPERUSER PASSWORD %s",
}

// setupTable runs in Database as AdminUser, so that AdminUser owns the table
// and may grant on it. The seed row is added once.
var setupTable = []string{
	"SET ROLE " + AdminUser,
	`CREATE TABLE IF NOT EXISTS public.` + Table + ` (
	   id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	   author     text NOT NULL DEFAULT current_user,
	   body       text NOT NULL,
	   created_at timestamptz NOT NULL DEFAULT now()
	 )`,
	`INSERT INTO public.` + Table + ` (author, body)
	   SELECT 'waypoint', 'Welcome! Every row here was written through Waypoint.'
	   WHERE NOT EXISTS (SELECT FROM public.` + Table + `)`,
}

// setup makes sure the admin role (with this run's password), the database
// (owned by the admin, so the admin also owns its public schema) and the
// table exist.
func (s *Server) setup(ctx context.Context) error {
	roles := append([]string(nil), setupRoles...)
	roles[len(roles)-1] = fmt.Sprintf(roles[len(roles)-1], quoteLiteral(s.AdminPassword))
	if err := s.superExec(ctx, "postgres", roles...); err != nil {
		return err
	}
	exists, err := s.databaseExists(ctx)
	if err != nil {
		return err
	}
	if !exists {
		if err := s.superExec(ctx, "postgres", "CREATE DATABASE "+Database+" OWNER "+AdminUser); err != nil {
			return err
		}
	}
	return s.superExec(ctx, Database, setupTable...)
}

// databaseExists reports whether Database exists.
func (s *Server) databaseExists(ctx context.Context) (bool, error) {
	conn, err := s.connectSocket(ctx, "postgres")
	if err != nil {
		return false, err
	}
	defer conn.Close(context.Background())
	var exists bool
	err = conn.QueryRow(ctx, "SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)", Database).Scan(&exists)
	if err != nil {
		return false, fmt.Errorf("pgdemo: look up database %s: %w", Database, err)
	}
	return exists, nil
}

// superExec runs statements in database as the superuser, on one
// connection over the Unix socket.
func (s *Server) superExec(ctx context.Context, database string, statements ...string) error {
	conn, err := s.connectSocket(ctx, database)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, sql := range statements {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("pgdemo: setup in %s: %w", database, err)
		}
	}
	return nil
}

// connectSocket connects as the superuser over the cluster's Unix socket.
func (s *Server) connectSocket(ctx context.Context, database string) (*pgx.Conn, error) {
	conn, err := pgx.Connect(ctx, s.srv.SocketConnString(superUser, database))
	if err != nil {
		return nil, fmt.Errorf("pgdemo: connect as superuser to %s: %w", database, err)
	}
	return conn, nil
}

// quoteLiteral quotes a SQL string literal (standard_conforming_strings on).
func quoteLiteral(v string) string { return "'" + strings.ReplaceAll(v, "'", "''") + "'" }
