package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/waypoint-proxy/waypoint/internal/config"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/provision"
	"github.com/waypoint-proxy/waypoint/internal/server"
)

// checkConnectTimeout bounds `waypoint check -connect` as a whole.
const checkConnectTimeout = time.Minute

// checkConnect logs in as each postgres listener's admin (the same
// login serve uses, server.AdminOptions) and prints what the admin lacks to
// provision roles: LOGIN, CREATEROLE, CONNECT on databases (the given ones,
// or every non-template database it can see), and the right to grant on
// schemas and the objects in them, each with the statement that fixes it.
// It warns (without failing) about settings that work but hurt: md5
// password_encryption, and spare backends that may take too many of the
// server's connection slots.
// It returns the exit code: 0 when nothing is missing, 1 otherwise.
func checkConnect(cfg *config.Config, databases, schemas []string, stdout io.Writer) int {
	ctx, cancel := context.WithTimeout(context.Background(), checkConnectTimeout)
	defer cancel()
	code := 0
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		if l.Postgres == nil {
			continue
		}
		if !checkListener(ctx, l, databases, schemas, stdout) {
			code = 1
		}
	}
	return code
}

// checkListener checks one listener's admin and reports whether nothing is
// missing.
func checkListener(ctx context.Context, l *config.Listener, databases, schemas []string, w io.Writer) bool {
	pg := l.Postgres
	fmt.Fprintf(w, "listener %s: admin %s at %s\n", l.Name, pg.AdminUser, l.Backend)
	login, err := server.AdminOptions(l)
	if err != nil {
		fmt.Fprintf(w, "  FAIL %v\n", err)
		return false
	}
	opts := login
	opts.Prefix, opts.TTL = pg.UserPrefix, pg.UserTTL
	prov, err := provision.New(ctx, opts)
	if err != nil {
		fmt.Fprintf(w, "  FAIL %s\n", adminLoginError(l, err))
		return false
	}
	defer prov.Close()
	if !prov.IsCockroachDB() {
		if warn := passwordEncryptionWarning(ctx, login); warn != "" {
			fmt.Fprintf(w, "  WARN %s\n", warn)
		}
		checkSpareSlots(ctx, pg, login, w)
	}
	dbs := databases
	if len(dbs) == 0 {
		if dbs, err = prov.Databases(ctx); err != nil {
			fmt.Fprintf(w, "  FAIL could not list databases: %v\n", err)
			return false
		}
	}
	if len(schemas) == 0 {
		schemas = []string{"public"}
	}
	fmt.Fprintf(w, "  databases: %s; schemas: %s\n", strings.Join(dbs, ", "), strings.Join(schemas, ", "))
	findings, err := prov.Check(ctx, dbs, schemas)
	for _, f := range findings {
		fmt.Fprintf(w, "  MISSING %s\n    fix: %s\n", f.Problem, f.Fix)
	}
	if err != nil {
		fmt.Fprintf(w, "  FAIL check could not finish: %v\n", err)
		return false
	}
	if len(findings) > 0 {
		fmt.Fprintf(w, "  %d problem(s)\n", len(findings))
		return false
	}
	fmt.Fprintln(w, "  ok: LOGIN, CREATEROLE, CONNECT and the right to grant every preset on every object checked")
	return true
}

// passwordEncryptionWarning logs in as the admin and returns a warning when
// the server's password_encryption is md5, or "" when it is not. Provisioning
// then sets each role's password as its md5 hash, and that hash is as good as
// the password to md5 authentication, for anyone who reads it in a statement
// log or in pg_authid. A failure to read the setting is itself returned as
// the warning.
func passwordEncryptionWarning(ctx context.Context, login provision.Options) string {
	conn, err := connectAdmin(ctx, login)
	if err != nil {
		return fmt.Sprintf("could not read password_encryption: %v", err)
	}
	defer conn.Close(ctx)
	var enc string
	if err := conn.QueryRow(ctx, "SHOW password_encryption").Scan(&enc); err != nil {
		return fmt.Sprintf("could not read password_encryption: %v", err)
	}
	if enc != "md5" {
		return ""
	}
	return "password_encryption is md5 on this server: Waypoint then sets each role's password as its md5 hash, " +
		"which md5 authentication accepts in place of the password, so the hash in a statement log or in pg_authid " +
		"is as good as the password; set it to scram-sha-256 " +
		"(ALTER SYSTEM SET password_encryption = 'scram-sha-256'; SELECT pg_reload_conf();)"
}

// connectAdmin opens one connection with login's admin settings (those of
// server.AdminOptions), configured exactly as the provisioner's pools are
// (provision.AdminConfig). A refused login comes back through
// server.ExplainLoginError.
func connectAdmin(ctx context.Context, login provision.Options) (*pgx.Conn, error) {
	cfg, err := provision.AdminConfig(login)
	if err != nil {
		return nil, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return nil, server.ExplainLoginError(err)
	}
	return conn, nil
}

// adminLoginError explains a failed admin login in the terms of the
// configuration file, e.g. "admin login as waypoint_admin to 10.0.1.10:5432
// failed: password authentication failed — check admin_password".
func adminLoginError(l *config.Listener, err error) string {
	what, hint := provision.DescribeLoginError(err)
	if ae, ok := pgwire.AuthMethodRefused(err); ok {
		what, hint = ae.Reason(), ae.Advice()
	}
	return fmt.Sprintf("admin login as %s to %s failed: %s — %s", l.Postgres.AdminUser, l.Backend, what, hint)
}

// splitList splits a comma-separated flag value, dropping empty items.
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
