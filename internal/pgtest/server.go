package pgtest

import (
	"bytes"
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

// pgctlTimeout bounds how long pg_ctl waits for the server to start or stop.
const pgctlTimeout = 60 * time.Second

// server is one PostgreSQL data directory and the commands that run it.
type server struct {
	bin  string              // directory holding initdb, pg_ctl, postgres
	dir  string              // cluster directory: data/, server.log, Unix socket
	port int                 // TCP and Unix-socket port; set before start
	cred *syscall.Credential // user that runs PostgreSQL; nil: this process's user

	mu      sync.Mutex // guards running and serialises pg_ctl
	running bool
}

func (s *server) dataDir() string { return filepath.Join(s.dir, "data") }
func (s *server) logPath() string { return filepath.Join(s.dir, "server.log") }

// serverCredential returns the user PostgreSQL must run as: the "postgres"
// system user when this process is root (PostgreSQL refuses root), else nil.
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(SuperUser)
	if err != nil {
		return nil, &missingError{what: `the "postgres" system user (PostgreSQL refuses to run as root)`}
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: uid of user postgres: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgtest: gid of user postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// newClusterDir creates a fresh cluster directory owned by cred's user.
// It is not under t.TempDir, which is private to root.
func newClusterDir(cred *syscall.Credential) (string, error) {
	reapOrphans()
	dir, err := os.MkdirTemp("", clusterDirPattern)
	if err != nil {
		return "", fmt.Errorf("pgtest: cluster directory: %w", err)
	}
	if err := writeOwner(dir); err != nil {
		os.RemoveAll(dir)
		return "", fmt.Errorf("pgtest: cluster directory: %w", err)
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			os.RemoveAll(dir)
			return "", fmt.Errorf("pgtest: hand cluster directory to postgres: %w", err)
		}
	}
	return dir, nil
}

// run runs one of the installation's programs as the server user, in a
// minimal environment (no PG* variables from the test's environment).
func (s *server) run(name string, args ...string) error {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = []string{"PATH=" + s.bin + ":/usr/bin:/bin", "LC_ALL=C", "LANG=C", "HOME=" + s.dir}
	if s.cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: s.cred}
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// initdb creates the data directory with superuser SuperUser.
func (s *server) initdb() error {
	err := s.run("initdb", "-D", s.dataDir(), "-U", SuperUser, "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-sync", "--no-instructions")
	if err != nil {
		return fmt.Errorf("pgtest: %w (can the postgres user read %s? %s)", err, s.bin, installHint)
	}
	return nil
}

// start starts the server on s.port and waits until it accepts
// connections. Starting a running server does nothing.
func (s *server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.running {
		return nil
	}
	err := s.run("pg_ctl", "start", "-D", s.dataDir(), "-l", s.logPath(), "-w",
		"-t", strconv.Itoa(int(pgctlTimeout.Seconds())), "-o", "-p "+strconv.Itoa(s.port))
	if err != nil {
		return fmt.Errorf("pgtest: %w\nserver log:\n%s", err, s.log())
	}
	s.running = true
	return nil
}

// stop stops the server with pg_ctl's shutdown mode ("fast" or
// "immediate") and waits for it. Stopping a stopped server does nothing.
func (s *server) stop(mode string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	err := s.run("pg_ctl", "stop", "-D", s.dataDir(), "-m", mode, "-w",
		"-t", strconv.Itoa(int(pgctlTimeout.Seconds())))
	if err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	s.running = false
	return nil
}

// readLog returns the server log written so far.
func (s *server) readLog() (string, error) {
	b, err := os.ReadFile(s.logPath())
	if err != nil {
		return "", fmt.Errorf("pgtest: read server log: %w", err)
	}
	return string(b), nil
}

// log returns the server log for error messages, or why it is unreadable.
func (s *server) log() string {
	text, err := s.readLog()
	if err != nil {
		return err.Error()
	}
	return text
}

// freePort returns a TCP port on loopback that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pgtest: pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
