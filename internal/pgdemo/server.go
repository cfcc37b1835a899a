package pgdemo

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

// loopback is the only address the server listens on.
const loopback = "127.0.0.1"

// pgctlTimeout bounds how long pg_ctl waits for the server to start or stop.
const pgctlTimeout = 60 * time.Second

// confFile is the demo's settings file in the data directory, rewritten at
// every start and included from postgresql.conf.
const confFile = "waypoint-demo.conf"

// server is one data directory and the commands that run it.
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
// system user when this process is root, else nil (this process's user).
func serverCredential() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup(superUser)
	if err != nil {
		return nil, fmt.Errorf("pgdemo: running as root, PostgreSQL must run as the \"postgres\" system user, which does not exist (%v); %s creates it", err, InstallCommand)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgdemo: uid of user postgres: %w", err)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgdemo: gid of user postgres: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// prepareDir makes the cluster directory private (it holds the Unix
// socket, on which the superuser logs in without a password) and hands it to
// the server's user, when that is not this process's user.
func (s *server) prepareDir() error {
	if err := os.Chmod(s.dir, 0o700); err != nil {
		return fmt.Errorf("pgdemo: cluster directory: %w", err)
	}
	if s.cred == nil {
		return nil
	}
	if err := os.Chown(s.dir, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
		return fmt.Errorf("pgdemo: hand %s to the postgres user: %w", s.dir, err)
	}
	return nil
}

// command builds a command running one of the installation's programs as
// the server's user, in a minimal environment (no PG* variables) and in a
// session of its own, so that the terminal's Ctrl-C does not reach the
// server.
func (s *server) command(name string, args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(s.bin, name), args...)
	cmd.Dir = s.dir
	cmd.Env = []string{"PATH=" + s.bin + ":/usr/bin:/bin", "LC_ALL=C", "LANG=C", "HOME=" + s.dir}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true, Credential: s.cred}
	return cmd
}

// run runs a program and returns its combined output in the error.
func (s *server) run(name string, args ...string) error {
	out, err := s.command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// initialized reports whether the data directory holds a cluster.
func (s *server) initialized() bool {
	_, err := os.Stat(filepath.Join(s.dataDir(), "PG_VERSION"))
	return err == nil
}

// initdb creates the data directory with the bootstrap superuser and
// includes the demo's settings file from postgresql.conf.
func (s *server) initdb() error {
	err := s.run("initdb", "-D", s.dataDir(), "-U", superUser, "-A", "trust",
		"-E", "UTF8", "--locale=C", "--no-instructions")
	if err != nil {
		return fmt.Errorf("pgdemo: %w (the server's user must be able to reach %s)", err, s.dir)
	}
	f, err := os.OpenFile(filepath.Join(s.dataDir(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return fmt.Errorf("pgdemo: open postgresql.conf: %w", err)
	}
	_, err = fmt.Fprintf(f, "\n# waypoint demo\ninclude_if_exists '%s'\n", confFile)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgdemo: write postgresql.conf: %w", err)
	}
	return nil
}

// writeConfig writes pg_hba.conf (Unix socket trusted, for the setup as
// superuser; TCP from 127.0.0.1 with SCRAM passwords) and the settings file.
// Both get the owner of the data directory.
func (s *server) writeConfig() error {
	hba := "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	conf := fmt.Sprintf("listen_addresses = '%s'\nunix_socket_directories = '%s'\nmax_connections = 100\n"+
		"password_encryption = 'scram-sha-256'\nlogging_collector = off\nlog_line_prefix = '%%m [%%p] %%q%%u@%%d '\n",
		loopback, strings.ReplaceAll(s.dir, "'", "''"))
	for name, body := range map[string]string{"pg_hba.conf": hba, confFile: conf} {
		if err := s.writeDataFile(name, body); err != nil {
			return err
		}
	}
	return nil
}

// writeDataFile replaces a file in the data directory, owned by the server's
// user.
func (s *server) writeDataFile(name, body string) error {
	path := filepath.Join(s.dataDir(), name)
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		return fmt.Errorf("pgdemo: write %s: %w", name, err)
	}
	if s.cred != nil {
		if err := os.Chown(path, int(s.cred.Uid), int(s.cred.Gid)); err != nil {
			return fmt.Errorf("pgdemo: chown %s: %w", name, err)
		}
	}
	return nil
}

// start starts the server on s.port and waits until it accepts connections.
func (s *server) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	err := s.run("pg_ctl", "start", "-D", s.dataDir(), "-l", s.logPath(), "-w",
		"-t", strconv.Itoa(int(pgctlTimeout.Seconds())), "-o", "-p "+strconv.Itoa(s.port))
	if err != nil {
		return fmt.Errorf("pgdemo: %w\nserver log: %s", err, s.logPath())
	}
	s.running = true
	return nil
}

// stop stops a running server with a fast shutdown and waits for it.
// Stopping a stopped server does nothing.
func (s *server) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.running {
		return nil
	}
	err := s.run("pg_ctl", "stop", "-D", s.dataDir(), "-m", "fast", "-w",
		"-t", strconv.Itoa(int(pgctlTimeout.Seconds())))
	if err != nil {
		return fmt.Errorf("pgdemo: %w", err)
	}
	s.running = false
	return nil
}

// freePort returns a TCP port on loopback that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", net.JoinHostPort(loopback, "0"))
	if err != nil {
		return 0, fmt.Errorf("pgdemo: pick a port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
