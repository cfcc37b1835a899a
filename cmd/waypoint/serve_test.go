package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/tailnet"
	"github.com/waypoint-proxy/waypoint/internal/tailnettest"
)

// serveProc is a `waypoint serve` subprocess on an in-process tailnet in
// front of a real PostgreSQL, with one client (alice, readonly on appdb).
type serveProc struct {
	cmd         *exec.Cmd
	logs        *logLines
	metricsAddr string
	auditPath   string
	tailnetIP   string
	tn          *tailnettest.Tailnet
	alice       *tailnettest.Client
}

// startServe starts the process with the given drain timeout and waits
// until it serves.
func startServe(t *testing.T, drain string) *serveProc {
	t.Helper()
	pg := pgtest.Shared(t, pgtest.Options{})
	pg.CreateAppDatabase(t, "appdb")
	tn := tailnettest.New(t)
	dir := t.TempDir()
	sp := &serveProc{tn: tn, metricsAddr: freePort(t), auditPath: filepath.Join(dir, "audit.jsonl"), logs: &logLines{}}
	cfg := fmt.Sprintf(`
[tailscale]
hostname = "waypoint-serve-test"
state_dir = %q
auth_key = %q
control_url = %q
ephemeral = true

[metrics]
listen = %q

[shutdown]
drain_timeout = %q

[[listeners]]
name = "pg-main"
listen = ":5432"
mode = "postgres"
backend = %q
tls_mode = "off"
audit_log = %q

[listeners.postgres]
admin_user = %q
admin_password = "${WAYPOINT_TEST_ADMIN_PASSWORD}"
backend_tls = "disable"
`, filepath.Join(dir, "tsnet"), tn.AuthKey(), tn.ControlURL, sp.metricsAddr, drain, pg.Addr(), sp.auditPath, pg.AdminUser)
	cfgPath := filepath.Join(dir, "waypoint.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	sp.cmd = exec.Command(os.Args[0], "serve", "-config", cfgPath, "-log-format", "json")
	sp.cmd.Env = append(os.Environ(), runAsWaypointEnv+"=1", "WAYPOINT_TEST_ADMIN_PASSWORD="+pg.AdminPassword)
	stderr, err := sp.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.cmd.Process.Kill(); sp.cmd.Wait() })
	ready := make(chan string, 1)
	go sp.logs.scan(stderr, `"msg":"waypoint is serving"`, ready)
	select {
	case line := <-ready:
		var m map[string]any
		json.Unmarshal([]byte(line), &m)
		sp.tailnetIP, _ = m["tailnet_ip"].(string)
	case <-time.After(60 * time.Second):
		t.Fatalf("waypoint did not start:\n%s", sp.logs)
	}
	sp.alice = tn.NewClient(t, "alice@example.com", "laptop")
	tn.SetGrant(sp.alice, tailnet.DefaultCapability, json.RawMessage(`{"backends":{"pg-main":{"pg":{"databases":{"appdb":{"permissions":["readonly"]}}}}}}`))
	return sp
}

// connect opens a session as alice. SetGrant waits only for nodes it
// started, so the serve process's node gets a moment to receive the grant.
func (sp *serveProc) connect(t *testing.T) *pgx.Conn {
	t.Helper()
	pcfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://x@%s:5432/appdb?sslmode=disable&connect_timeout=20", sp.tailnetIP))
	if err != nil {
		t.Fatal(err)
	}
	pcfg.DialFunc = sp.tn.Dialer(sp.alice)
	var conn *pgx.Conn
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err = pgx.ConnectConfig(context.Background(), pcfg)
		if err == nil || time.Now().After(deadline) || !strings.Contains(err.Error(), "28000") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("connect through the serve process: %v\n%s", err, sp.logs)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// wait waits up to limit for the process to exit and returns its error.
func (sp *serveProc) wait(t *testing.T, limit time.Duration) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- sp.cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(limit):
		t.Fatalf("still running %v after the signal\n%s", limit, sp.logs)
		return nil
	}
}

// TestServe_Process runs `waypoint serve` as a real process on an in-process
// tailnet in front of a real PostgreSQL: a client gets a session, /metrics
// shows the traffic, the audit log names the caller, and SIGTERM drains and
// exits 0.
func TestServe_Process(t *testing.T) {
	sp := startServe(t, "2s")
	conn := sp.connect(t)
	ctx := context.Background()
	metricsAddr, auditPath, logs := sp.metricsAddr, sp.auditPath, sp.logs
	var who string
	if err := conn.QueryRow(ctx, "select current_setting('waypoint.login') || ' ' || current_user").Scan(&who); err != nil {
		t.Fatal(err)
	}
	if who != "alice@example.com wp_alice_laptop_appdb" {
		t.Errorf("backend sees %q, want the caller's login and role", who)
	}

	body := httpGet(t, "http://"+metricsAddr+"/metrics")
	for _, series := range []string{"waypoint_sessions_active", "waypoint_provision_duration_seconds", "waypoint_upstream_login_duration_seconds"} {
		if !strings.Contains(body, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	if got := httpGet(t, "http://"+metricsAddr+"/readyz"); !strings.Contains(got, "ok") {
		t.Errorf("/readyz: %q", got)
	}

	// SIGTERM with a session open: the process drains for 2 s, tells the
	// session 57P01 and exits 0.
	start := time.Now()
	sp.cmd.Process.Signal(syscall.SIGTERM)
	if err := sp.wait(t, 30*time.Second); err != nil {
		t.Errorf("exit after SIGTERM: %v, want 0\n%s", err, logs)
	}
	t.Logf("exited %v after SIGTERM (drain_timeout 2s)", time.Since(start).Round(10*time.Millisecond))
	_, err := conn.Exec(ctx, "select 1")
	if err == nil || !strings.Contains(err.Error(), "57P01") {
		t.Errorf("open session after shutdown: got %v, want 57P01", err)
	}
	audit, _ := os.ReadFile(auditPath)
	if !strings.Contains(string(audit), `"login":"alice@example.com"`) || !strings.Contains(string(audit), "current_setting") {
		t.Errorf("audit log does not record alice's query:\n%s", audit)
	}
	if !strings.Contains(logs.String(), `"msg":"connection"`) {
		t.Errorf("no per-connection log line:\n%s", logs)
	}
}

// TestServe_SecondSignalExitsAtOnce: with a session open and a long drain,
// a second SIGTERM ends the process at once (non-zero: it did not drain).
func TestServe_SecondSignalExitsAtOnce(t *testing.T) {
	sp := startServe(t, "5m")
	sp.connect(t)
	drained := make(chan string, 1)
	sp.logs.watch(`"msg":"shutting down`, drained)
	sp.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-drained:
	case <-time.After(20 * time.Second):
		t.Fatalf("no shutdown log line after SIGTERM\n%s", sp.logs)
	}
	start := time.Now()
	sp.cmd.Process.Signal(syscall.SIGTERM)
	err := sp.wait(t, 20*time.Second)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Errorf("after a second SIGTERM: %v, want exit status 1", err)
	}
	t.Logf("exited %v after the second signal (drain_timeout 5m)", time.Since(start).Round(10*time.Millisecond))
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func httpGet(t *testing.T, url string) string {
	t.Helper()
	c := &http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// logLines collects a process's log output.
type logLines struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logLines) scan(r io.Reader, marker string, found chan<- string) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		l.mu.Lock()
		l.b.WriteString(line + "\n")
		l.mu.Unlock()
		if strings.Contains(line, marker) {
			select {
			case found <- line:
			default:
			}
		}
	}
}

// watch delivers the first line containing marker already seen or seen
// later to found.
func (l *logLines) watch(marker string, found chan<- string) {
	go func() {
		for range 400 {
			l.mu.Lock()
			text := l.b.String()
			l.mu.Unlock()
			for _, line := range strings.Split(text, "\n") {
				if strings.Contains(line, marker) {
					found <- line
					return
				}
			}
			time.Sleep(50 * time.Millisecond)
		}
	}()
}

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
