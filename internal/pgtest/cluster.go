package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/waypoint-proxy/waypoint/internal/pgserver"
)

// portAttempts is how often start retries when the chosen port was taken
// between picking it and the server binding it.
const portAttempts = 3

// start creates, configures and starts a cluster. On error nothing is left
// behind.
func start(opts Options) (*Cluster, error) {
	opts, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	in, err := findInstallation(opts.Version)
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir, err := newClusterDir(cred)
	if err != nil {
		return nil, err
	}
	c := &Cluster{
		Version:       in.Major,
		Host:          "127.0.0.1",
		Dir:           dir,
		AdminUser:     AdminUser,
		AdminPassword: rand.Text(),
		SuperUser:     SuperUser,
		SuperPassword: rand.Text(),
		srv:           &pgserver.Server{Bin: in.Bin, Dir: dir, Cred: cred},
		appDBs:        map[string]bool{},
	}
	if err := c.boot(opts); err != nil {
		return nil, errors.Join(err, c.destroy())
	}
	return c, nil
}

// boot initialises the data directory, starts the server and creates the
// roles.
func (c *Cluster) boot(opts Options) error {
	if err := initData(c.srv); err != nil {
		return err
	}
	if err := writeConfig(c.srv, opts); err != nil {
		return err
	}
	if err := c.listen(); err != nil {
		return err
	}
	return c.createRoles()
}

// listen starts the server on a free port, retrying with another port if
// the chosen one was taken in the meantime.
func (c *Cluster) listen() error {
	var err error
	for range portAttempts {
		if c.srv.Port, err = pgserver.FreePort(); err != nil {
			return fmt.Errorf("pgtest: %w", err)
		}
		if err = startServer(c.srv); err == nil || !strings.Contains(err.Error(), "could not bind") {
			break
		}
	}
	c.Port = c.srv.Port
	return err
}

// startServer starts srv, with the server log in the error.
func startServer(srv *pgserver.Server) error {
	if err := srv.Start(); err != nil {
		return fmt.Errorf("pgtest: %w\nserver log:\n%s", err, srv.Log())
	}
	return nil
}

// createRoles sets the superuser's password and creates the admin role,
// with CREATE on the postgres database (the tests' admin database).
// Statement logging is off for the session so passwords stay out of the log.
func (c *Cluster) createRoles() error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	conn, err := c.connectSocket(ctx, "postgres")
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, sql := range []string{
		"SET log_statement = 'none'",
		fmt.Sprintf("ALTER ROLE %s PASSWORD %s", quoteIdent(c.SuperUser), quoteLiteral(c.SuperPassword)),
		fmt.Sprintf("CREATE ROLE %s LOGIN CREATEROLE NOSUPERUSER PASSWORD %s", quoteIdent(c.AdminUser), quoteLiteral(c.AdminPassword)),
		// Waypoint creates its private schema "waypoint" in the admin
		// database once.
		fmt.Sprintf("GRANT CREATE ON DATABASE postgres TO %s", quoteIdent(c.AdminUser)),
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("pgtest: create roles: %w", err)
		}
	}
	return nil
}

// serverCredential returns the user PostgreSQL must run as (see
// pgserver.Credential); a missing "postgres" user is a missingError.
func serverCredential() (*syscall.Credential, error) {
	cred, err := pgserver.Credential()
	if errors.Is(err, pgserver.ErrNoSystemUser) {
		return nil, &missingError{what: `the "postgres" system user (PostgreSQL refuses to run as root)`}
	}
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	return cred, nil
}

// newClusterDir creates a fresh cluster directory owned by cred's user and
// records this process as its owner (see reapOrphans). It is not under
// t.TempDir, which is private to root.
func newClusterDir(cred *syscall.Credential) (string, error) {
	reapOrphans()
	dir, err := pgserver.NewDir(clusterDirPattern, cred)
	if err != nil {
		return "", fmt.Errorf("pgtest: %w", err)
	}
	if err := writeOwner(dir); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("pgtest: cluster directory: %w", err)
	}
	return dir, nil
}

// initdb creates srv's data directory with superuser SuperUser.
func initdb(srv *pgserver.Server) error {
	if err := srv.Initdb(SuperUser, "--no-sync"); err != nil {
		return fmt.Errorf("pgtest: %w (can the postgres user read %s? %s)", err, srv.Bin, installHint)
	}
	return nil
}

// destroy stops the server immediately and removes its directory.
func (c *Cluster) destroy() error {
	if err := c.srv.Stop(pgserver.Immediate); err != nil {
		return fmt.Errorf("%w (left %s in place)", err, c.Dir)
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		return fmt.Errorf("pgtest: remove cluster directory: %w", err)
	}
	return nil
}

// Stop shuts the server down cleanly (pg_ctl -m fast, so every committed
// transaction is on disk), keeping its data for Restart. Open connections
// are terminated. Stopping a stopped cluster does nothing. A Shared cluster
// cannot be stopped.
func (c *Cluster) Stop(tb testing.TB) {
	tb.Helper()
	c.refuseShared(tb, "Stop")
	if err := c.srv.Stop(pgserver.Fast); err != nil {
		tb.Fatalf("%v\nserver log:\n%s", err, c.srv.Log())
	}
}

// Restart stops the server if it runs and starts it again on the same port
// with the same data. A Shared cluster cannot be restarted.
func (c *Cluster) Restart(tb testing.TB) {
	tb.Helper()
	c.refuseShared(tb, "Restart")
	if err := c.srv.Stop(pgserver.Fast); err != nil {
		tb.Fatalf("%v\nserver log:\n%s", err, c.srv.Log())
	}
	if err := startServer(c.srv); err != nil {
		tb.Fatal(err)
	}
}

// refuseShared fails the test if c belongs to the Shared registry, whose
// clusters other tests rely on.
func (c *Cluster) refuseShared(tb testing.TB, method string) {
	tb.Helper()
	if c.shared {
		tb.Fatalf("pgtest: %s on a Shared cluster; use Start for a cluster of your own", method)
	}
}
