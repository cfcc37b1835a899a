// Package pgserver runs a PostgreSQL server from installed binaries: it
// finds the binaries, initialises a data directory and starts and stops the
// server with pg_ctl. It holds what the test rig (internal/pgtest) and the
// demo (internal/pgdemo) share; each adds its own configuration and SQL.
//
// PostgreSQL refuses to run as root. When this process is root, Credential
// returns the "postgres" system user, and every program runs as that user in
// a cluster directory handed to it (NewDir, PrepareDir).
//
// A cluster directory holds data/ (the data directory), server.log and the
// server's Unix socket, if the caller configures one there.
//
// Errors name the program and include its output; they are not logged.
package pgserver

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// SystemUser is the operating-system user PostgreSQL runs as when this
// process is root.
const SystemUser = "postgres"

// pgctlTimeout bounds how long pg_ctl waits for the server to start or stop.
const pgctlTimeout = 60 * time.Second

// ErrNoSystemUser is returned (wrapped) by Credential when this process is
// root and the SystemUser does not exist.
var ErrNoSystemUser = errors.New(`the "postgres" system user does not exist (PostgreSQL refuses to run as root)`)

// StopMode is a pg_ctl shutdown mode.
type StopMode string

// Shutdown modes for Stop.
const (
	// Fast ends open sessions and writes a checkpoint: committed data is
	// on disk.
	Fast StopMode = "fast"
	// Immediate aborts the server; the next start runs crash recovery.
	Immediate StopMode = "immediate"
)

// Server is one cluster directory and the commands that run PostgreSQL in
// it. Set the exported fields before the first call and do not change them
// while the server runs (Port may change between a failed Start and the
// next). Start and Stop are safe for concurrent use; the zero value of the
// unexported state means "not running".
type Server struct {
	// Bin is the directory holding initdb, pg_ctl and postgres.
	Bin string
	// Dir is the cluster directory: data/ and server.log go inside.
	Dir string
	// Port is the port the server listens on (TCP and Unix socket).
	Port int
	// Cred is the user that runs PostgreSQL; nil means this process's user.
	Cred *syscall.Credential
	// OwnSession starts the programs in a session of their own, so that a
	// Ctrl-C in the terminal does not reach the server.
	OwnSession bool

	mu      sync.Mutex // guards running and serialises pg_ctl
	running bool
}

// DataDir is the data directory, Dir/data.
func (s *Server) DataDir() string { return filepath.Join(s.Dir, "data") }

// LogPath is the server log, Dir/server.log.
func (s *Server) LogPath() string { return filepath.Join(s.Dir, "server.log") }

// Initialized reports whether the data directory holds a cluster.
func (s *Server) Initialized() bool {
	_, err := os.Stat(filepath.Join(s.DataDir(), "PG_VERSION"))
	return err == nil
}

// Initdb creates the data directory: bootstrap superuser superUser, trust
// authentication, UTF8, locale C, followed by extra initdb arguments (e.g.
// "--no-sync").
func (s *Server) Initdb(superUser string, extra ...string) error {
	args := append([]string{"-D", s.DataDir(), "-U", superUser, "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-instructions"}, extra...)
	if err := s.run("initdb", args...); err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	return nil
}

// WriteDataFile replaces the file name in the data directory with body,
// mode 0600 and owned by Cred's user.
func (s *Server) WriteDataFile(name, body string) error {
	path := filepath.Join(s.DataDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return fmt.Errorf("pgserver: write %s: %w", name, err)
	}
	if s.Cred != nil {
		if err := os.Chown(path, int(s.Cred.Uid), int(s.Cred.Gid)); err != nil {
			return fmt.Errorf("pgserver: chown %s: %w", name, err)
		}
	}
	return nil
}

// AppendDataFile appends text to the existing file name in the data
// directory (e.g. "postgresql.conf"), keeping its owner and mode.
func (s *Server) AppendDataFile(name, text string) error {
	f, err := os.OpenFile(filepath.Join(s.DataDir(), name), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgserver: open %s: %w", name, err)
	}
	_, err = f.WriteString(text)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgserver: write %s: %w", name, err)
	}
	return nil
}

// Start starts the server on Port, logging to LogPath, and waits until it
// accepts connections. Starting a running server does nothing. On error
// the server is not running; the log says why.
func (s *Server) Start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return nil
	}
	err := s.run("pg_ctl", "start", "-D", s.DataDir(), "-l", s.LogPath(), "-w",
		"-t", strconv.Itoa(int(pgctlTimeout.Seconds())), "-o", "-p "+strconv.Itoa(s.Port))
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	s.running = true
	return nil
}

// Stop stops a server that Start started, in the given mode, and waits for
// it. Stopping a stopped server does nothing.
func (s *Server) Stop(mode StopMode) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	err := s.run("pg_ctl", "stop", "-D", s.DataDir(), "-m", string(mode), "-w",
		"-t", strconv.Itoa(int(pgctlTimeout.Seconds())))
	if err != nil {
		return fmt.Errorf("pgserver: %w", err)
	}
	s.running = false
	return nil
}

// ReadLog returns the server log written so far.
func (s *Server) ReadLog() (string, error) {
	b, err := os.ReadFile(s.LogPath())
	if err != nil {
		return "", fmt.Errorf("pgserver: read server log: %w", err)
	}
	return string(b), nil
}

// Log returns the server log for error messages, or why it is unreadable.
func (s *Server) Log() string {
	text, err := s.ReadLog()
	if err != nil {
		return err.Error()
	}
	return text
}

// run runs one of the installation's programs as Cred's user, in Dir, in a
// minimal environment (no PG* variables from this process's environment).
// The error includes the program's combined output.
func (s *Server) run(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(s.Bin, name), args...)
	cmd.Dir = s.Dir
	cmd.Env = []string{"PATH=" + s.Bin + ":/usr/bin:/bin", "LC_ALL=C", "LANG=C", "HOME=" + s.Dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: s.OwnSession, Credential: s.Cred}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// Credential returns the user PostgreSQL must run as: SystemUser when this
// process is root, else nil (this process's user). It wraps ErrNoSystemUser
// if that user is needed and missing.
func Credential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(SystemUser)
	if err != nil {
		return nil, fmt.Errorf("pgserver: %w (%v)", ErrNoSystemUser, err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgserver: uid of user %s: %w", SystemUser, err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgserver: gid of user %s: %w", SystemUser, err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// NewDir creates a new cluster directory in os.TempDir (pattern as for
// os.MkdirTemp) and prepares it with PrepareDir. The caller removes it.
func NewDir(pattern string, cred *syscall.Credential) (string, error) {
	dir, err := os.MkdirTemp("", pattern)
	if err != nil {
		return "", fmt.Errorf("pgserver: cluster directory: %w", err)
	}
	if err := PrepareDir(dir, cred); err != nil {
		os.RemoveAll(dir)
		return "", err
	}
	return dir, nil
}

// PrepareDir makes the existing cluster directory dir private (mode 0700:
// it holds the Unix socket, where callers trust local logins) and hands it
// to cred's user; nil cred keeps the owner.
func PrepareDir(dir string, cred *syscall.Credential) error {
	if err := os.Chmod(dir, 0o700); err != nil {
		return fmt.Errorf("pgserver: cluster directory: %w", err)
	}
	if cred == nil {
		return nil
	}
	if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
		return fmt.Errorf("pgserver: hand %s to the %s user: %w", dir, SystemUser, err)
	}
	return nil
}

// SocketConnString is the keyword/value connection string (for pgx or
// libpq) of user's login to database over the server's Unix socket, which
// the cluster's configuration must put in Dir. It asks for no TLS: a Unix
// socket does not carry it.
func (s *Server) SocketConnString(user, database string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable",
		quoteConnValue(s.Dir), s.Port, quoteConnValue(user), quoteConnValue(database))
}

// quoteConnValue quotes a keyword/value connection-string value.
func quoteConnValue(v string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// FreePort returns a TCP port on 127.0.0.1 that was free a moment ago.
// Another process may take it before the server binds it.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgserver: pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
