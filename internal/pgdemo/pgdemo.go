// Package pgdemo runs the throwaway PostgreSQL server of `waypoint demo`: a
// cluster from the installed PostgreSQL binaries, listening on 127.0.0.1
// only, with a database "demo" holding one table owned by a CREATEROLE admin
// role, which is what Waypoint needs to provision roles.
//
// When this process runs as root, the server runs as the "postgres" system
// user, because PostgreSQL refuses to run as root. The server is started in
// a session of its own, so a Ctrl-C in the terminal reaches only the demo,
// which then stops the server itself.
//
// It is not a test helper (internal/pgtest is): it takes no testing.TB and
// reports every failure as an error.
package pgdemo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"

	"github.com/waypoint-proxy/waypoint/internal/pgserver"
)

// Names of what Start creates.
const (
	// AdminUser is the role Waypoint provisions with: LOGIN CREATEROLE, not
	// superuser, owner of Database and its table.
	AdminUser = "waypoint_admin"
	// Database is the demo database.
	Database = "demo"
	// Table is the demo table in Database, schema public, owned by AdminUser.
	Table = "notes"
	// superUser is the bootstrap superuser; it logs in only over the Unix
	// socket in the cluster directory.
	superUser = "postgres"
)

// Options configures Start. The zero value is ready to use.
type Options struct {
	// Dir is the cluster directory (data/, server.log and the Unix socket).
	// Empty means a new temporary directory, removed by Stop. A given Dir is
	// created if missing and kept by Stop; if it already holds a cluster from
	// an earlier run, that cluster is started again and its data kept.
	Dir string
	// Port is the TCP port on 127.0.0.1; 0 means a free port.
	Port int
}

// Server is a running demo PostgreSQL. Its fields are read-only.
type Server struct {
	// Version is the PostgreSQL major version, e.g. 15.
	Version int
	// Addr is "127.0.0.1:port", where TCP clients log in with a password.
	Addr string
	// AdminPassword is AdminUser's password, new at every Start.
	AdminPassword string
	// Dir is the cluster directory.
	Dir string

	srv       *pgserver.Server
	removeDir bool // Dir was made by Start: Stop removes it
}

// Start finds the installed PostgreSQL (ErrNotInstalled if there is none),
// creates or reuses a cluster in opts.Dir, starts it and makes sure the
// admin role (with a fresh password), the database and its table exist. ctx
// bounds the setup SQL. On error nothing is left running and a directory
// Start created is removed.
func Start(ctx context.Context, opts Options) (*Server, error) {
	bin, major, err := FindBinaries()
	if err != nil {
		return nil, err
	}
	cred, err := serverCredential()
	if err != nil {
		return nil, err
	}
	dir, created, err := clusterDir(opts.Dir)
	if err != nil {
		return nil, err
	}
	s := &Server{
		Version:       major,
		AdminPassword: rand.Text(),
		Dir:           dir,
		srv:           &pgserver.Server{Bin: bin, Dir: dir, Port: opts.Port, Cred: cred, OwnSession: true},
		removeDir:     created,
	}
	if err := s.boot(ctx); err != nil {
		return nil, errors.Join(err, s.Stop())
	}
	s.Addr = net.JoinHostPort(loopback, strconv.Itoa(s.srv.Port))
	return s, nil
}

// boot initialises the cluster if needed, starts it and runs the setup SQL.
func (s *Server) boot(ctx context.Context) error {
	if err := pgserver.PrepareDir(s.Dir, s.srv.Cred); err != nil {
		return fmt.Errorf("pgdemo: %w", err)
	}
	if !s.srv.Initialized() {
		if err := initdb(s.srv); err != nil {
			return err
		}
	}
	if err := writeConfig(s.srv); err != nil {
		return err
	}
	if s.srv.Port == 0 {
		port, err := pgserver.FreePort()
		if err != nil {
			return fmt.Errorf("pgdemo: %w", err)
		}
		s.srv.Port = port
	}
	if err := s.srv.Start(); err != nil {
		return fmt.Errorf("pgdemo: %w\nserver log: %s", err, s.srv.LogPath())
	}
	return s.setup(ctx)
}

// Stop stops the server (fast shutdown: open sessions are ended) and removes
// the directory if Start created it. It is idempotent.
func (s *Server) Stop() error {
	if err := s.srv.Stop(pgserver.Fast); err != nil {
		return fmt.Errorf("pgdemo: %w (left %s in place)", err, s.Dir)
	}
	if s.removeDir {
		if err := os.RemoveAll(s.Dir); err != nil {
			return fmt.Errorf("pgdemo: remove %s: %w", s.Dir, err)
		}
	}
	return nil
}

// LogPath is the server's log file (inside Dir).
func (s *Server) LogPath() string { return s.srv.LogPath() }

// clusterDir returns dir, created if missing, or a new temporary directory,
// and whether it was created here.
func clusterDir(dir string) (string, bool, error) {
	if dir == "" {
		d, err := os.MkdirTemp("", "waypoint-demo-pg-")
		if err != nil {
			return "", false, fmt.Errorf("pgdemo: cluster directory: %w", err)
		}
		return d, true, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", false, fmt.Errorf("pgdemo: cluster directory: %w", err)
	}
	if _, err := os.Stat(abs); err == nil {
		return abs, false, nil
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return "", false, fmt.Errorf("pgdemo: cluster directory: %w", err)
	}
	return abs, false, nil
}
