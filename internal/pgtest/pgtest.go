// Package pgtest starts throwaway PostgreSQL clusters for tests.
//
// A cluster lives in its own directory, listens on a random loopback TCP port
// (and on a Unix socket inside its directory, trusted, used for superuser
// helpers), and is stopped and removed when the test ends (Start) or when the
// test binary ends (Shared, via Main).
//
// When the test runs as root the servers run as the "postgres" system user,
// because PostgreSQL refuses to run as root.
//
// Missing PostgreSQL binaries skip the test, but fail it when the environment
// variable CI is true. Install them with scripts/install-postgres.sh.
package pgtest

import (
	"fmt"
	"net"
	"net/url"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/pgserver"
)

// Auth is a pg_hba.conf authentication method for TCP connections.
type Auth string

// Authentication methods a Cluster can require for TCP connections.
const (
	// AuthSCRAM requires SCRAM-SHA-256 (the default).
	AuthSCRAM Auth = "scram-sha-256"
	// AuthMD5 requires md5 and also sets password_encryption = md5, so that
	// passwords are stored as md5 hashes (otherwise the server would
	// silently use SCRAM for SCRAM-stored passwords).
	AuthMD5 Auth = "md5"
	// AuthPassword requires a cleartext password.
	AuthPassword Auth = "password"
)

// Well-known role names of every Cluster.
const (
	// AdminUser is the provisioning role: LOGIN CREATEROLE, not superuser.
	AdminUser = "waypoint_admin"
	// SuperUser is the bootstrap superuser.
	SuperUser = "postgres"
)

// Options configures a Cluster. The zero value is a cluster of the default
// major version requiring SCRAM-SHA-256 over TCP.
type Options struct {
	// Version is the major version. 0 means the default: the newest
	// Debian-installed major (15 here). 18 is the npm embedded build from
	// scripts/install-postgres.sh.
	Version int
	// Auth is the pg_hba method for TCP connections; "" means AuthSCRAM.
	Auth Auth
	// LogStatements sets log_statement = 'all'; read the log with ServerLog.
	LogStatements bool
	// Settings are extra postgresql.conf settings, applied after pgtest's
	// own (so they override them). Values are written as quoted strings;
	// do not quote them yourself.
	Settings map[string]string
}

// Cluster is a running throwaway PostgreSQL cluster. Its exported fields are
// read-only after Start. Methods are safe for concurrent use, but Stop and
// Restart interrupt every open connection.
type Cluster struct {
	Version int    // major version actually running
	Host    string // "127.0.0.1"
	Port    int
	Dir     string // cluster directory: data/, server.log, Unix socket

	// AdminUser (AdminUser, "waypoint_admin") has LOGIN CREATEROLE and is
	// not superuser. AdminPassword is random.
	AdminUser, AdminPassword string
	// SuperUser (SuperUser, "postgres") is the superuser, for assertions.
	// SuperPassword is random.
	SuperUser, SuperPassword string

	srv    *pgserver.Server
	shared bool // owned by the Shared registry; Stop and Restart refuse

	mu     sync.Mutex      // serialises CreateAppDatabase
	appDBs map[string]bool // databases created by CreateAppDatabase
}

// Start starts a new cluster for the calling test. It is stopped (immediate
// mode) and its directory removed by tb.Cleanup. Missing binaries skip the
// test (fail it under CI=true); any other failure fails it, with the server
// log.
func Start(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	began := time.Now()
	c, err := start(opts)
	if err != nil {
		skipOrFatal(tb, err)
	}
	tb.Cleanup(func() {
		if err := c.destroy(); err != nil {
			tb.Errorf("pgtest: %v", err)
		}
	})
	tb.Logf("pgtest: PostgreSQL %d at %s (%s) started in %.2fs", c.Version, c.Addr(), c.Dir, time.Since(began).Seconds())
	return c
}

// Addr returns "host:port" of the TCP listener.
func (c *Cluster) Addr() string {
	return net.JoinHostPort(c.Host, strconv.Itoa(c.Port))
}

// ConnString returns a postgres:// URL for a TCP connection to database as
// user, with sslmode=disable. An empty password is left out.
func (c *Cluster) ConnString(user, password, database string) string {
	u := url.URL{
		Scheme:   "postgres",
		Host:     c.Addr(),
		Path:     "/" + database,
		RawQuery: "sslmode=disable",
	}
	if password != "" {
		u.User = url.UserPassword(user, password)
	} else {
		u.User = url.User(user)
	}
	return u.String()
}

// String describes the cluster for test logs.
func (c *Cluster) String() string {
	return fmt.Sprintf("PostgreSQL %d at %s", c.Version, c.Addr())
}
