// Package redistest starts throwaway redis-server processes for tests: no
// persistence, loopback only, one per call, stopped when the test ends.
//
// A missing redis-server skips the test, except when the environment sets
// CI=true: there it fails, so CI never silently skips Redis tests.
package redistest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/pgserver"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

// startTimeout bounds waiting for a started server to answer PING.
const startTimeout = 10 * time.Second

// Server is one redis-server process on a fixed loopback port. It can be
// stopped and restarted on the same port, empty, to test outages. Its
// methods are safe for concurrent use.
type Server struct {
	bin  string
	dir  string
	port int

	mu  sync.Mutex
	cmd *exec.Cmd // nil while stopped
}

// Start runs a new redis-server on a free loopback port and stops it when
// tb ends.
func Start(tb testing.TB) *Server {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		testkit.SkipUnlessCI(tb, fmt.Errorf("redistest: redis-server not found: %w", err))
	}
	port, err := pgserver.FreePort() // Restart fails the test loudly if another process took it meanwhile
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{bin: bin, dir: tb.TempDir(), port: port}
	tb.Cleanup(func() { s.Stop(tb) })
	s.Restart(tb)
	return s
}

// Addr returns the server's host:port.
func (s *Server) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(s.port))
}

// Stop kills the server and waits for it to exit; its data is lost. Stopping
// a stopped server does nothing.
func (s *Server) Stop(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait() // "killed" is the expected outcome
	s.cmd = nil
}

// Restart starts a stopped server again, empty, on the same port, and waits
// until it answers PING. Restarting a running server fails the test.
func (s *Server) Restart(tb testing.TB) {
	tb.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil {
		tb.Fatal("redistest: Restart of a running server")
	}
	out := new(bytes.Buffer)
	cmd := exec.Command(s.bin,
		"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir,
		"--daemonize", "no", "--loglevel", "warning")
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		tb.Fatalf("redistest: start redis-server: %v", err)
	}
	s.cmd = cmd
	if err := waitReady(s.Addr(), startTimeout); err != nil {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		s.cmd = nil
		tb.Fatalf("redistest: %v; server output:\n%s", err, out)
	}
}

// waitReady polls addr until a PING gets +PONG or timeout passes.
func waitReady(addr string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		err := ping(addr)
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("redis-server at %s not ready after %v: %w", addr, timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping sends one inline PING and checks the reply.
func ping(addr string) error {
	conn, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer conn.Close()
	if err := conn.SetDeadline(time.Now().Add(time.Second)); err != nil {
		return err
	}
	if _, err := conn.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(conn).ReadString('\n')
	if err != nil {
		return err
	}
	if strings.TrimSpace(line) != "+PONG" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}
