package pgtest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
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
		Version:       in.major,
		Host:          "127.0.0.1",
		Dir:           dir,
		AdminUser:     AdminUser,
		AdminPassword: rand.Text(),
		SuperUser:     SuperUser,
		SuperPassword: rand.Text(),
		srv:           &server{bin: in.bin, dir: dir, cred: cred},
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
	if err := c.srv.initData(); err != nil {
		return err
	}
	if err := c.srv.writeConfig(opts); err != nil {
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
		if c.srv.port, err = freePort(); err != nil {
			return err
		}
		if err = c.srv.start(); err == nil || !strings.Contains(err.Error(), "could not bind") {
			break
		}
	}
	c.Port = c.srv.port
	return err
}

// createRoles sets the superuser's password and creates the admin role.
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
	} {
		if _, err := conn.Exec(ctx, sql); err != nil {
			return fmt.Errorf("pgtest: create roles: %w", err)
		}
	}
	return nil
}

// destroy stops the server immediately and removes its directory.
func (c *Cluster) destroy() error {
	if err := c.srv.stop("immediate"); err != nil {
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
	if err := c.srv.stop("fast"); err != nil {
		tb.Fatalf("%v\nserver log:\n%s", err, c.srv.log())
	}
}

// Restart stops the server if it runs and starts it again on the same port
// with the same data. A Shared cluster cannot be restarted.
func (c *Cluster) Restart(tb testing.TB) {
	tb.Helper()
	c.refuseShared(tb, "Restart")
	if err := c.srv.stop("fast"); err != nil {
		tb.Fatalf("%v\nserver log:\n%s", err, c.srv.log())
	}
	if err := c.srv.start(); err != nil {
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
