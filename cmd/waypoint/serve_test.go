package main

import (
	"bufio"
	"context"
	"encoding/json"
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

// TestServe_Process runs `waypoint serve` as a real process on an in-process
// tailnet in front of a real PostgreSQL: a client gets a session, /metrics
// shows the traffic, the audit log names the caller, and SIGTERM drains and
// exits 0.
func TestServe_Process(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	pg.CreateAppDatabase(t, "appdb")
	tn := tailnettest.New(t)
	dir := t.TempDir()
	metricsAddr := freePort(t)
	auditPath := filepath.Join(dir, "audit.jsonl")
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
drain_timeout = "2s"

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
`, filepath.Join(dir, "tsnet"), tn.AuthKey(), tn.ControlURL, metricsAddr, pg.Addr(), auditPath, pg.AdminUser)
	cfgPath := filepath.Join(dir, "waypoint.toml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "serve", "-config", cfgPath, "-log-format", "json")
	cmd.Env = append(os.Environ(), runAsWaypointEnv+"=1", "WAYPOINT_TEST_ADMIN_PASSWORD="+pg.AdminPassword)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	logs := &logLines{}
	ready := make(chan string, 1)
	go logs.scan(stderr, `"msg":"waypoint is serving"`, ready)
	var tailnetIP string
	select {
	case line := <-ready:
		var m map[string]any
		json.Unmarshal([]byte(line), &m)
		tailnetIP, _ = m["tailnet_ip"].(string)
	case <-time.After(60 * time.Second):
		t.Fatalf("waypoint did not start:\n%s", logs)
	}

	alice := tn.NewClient(t, "alice@example.com", "laptop")
	tn.SetGrant(alice, tailnet.DefaultCapability, json.RawMessage(`{"backends":{"pg-main":{"pg":{"databases":{"appdb":{"permissions":["readonly"]}}}}}}`))
	pcfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://x@%s:5432/appdb?sslmode=disable&connect_timeout=20", tailnetIP))
	if err != nil {
		t.Fatal(err)
	}
	pcfg.DialFunc = tn.Dialer(alice)
	ctx := context.Background()
	// SetGrant waits only for nodes it started; give the serve process's
	// node a moment to receive the grant.
	var conn *pgx.Conn
	deadline := time.Now().Add(20 * time.Second)
	for {
		conn, err = pgx.ConnectConfig(ctx, pcfg)
		if err == nil || time.Now().After(deadline) || !strings.Contains(err.Error(), "28000") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("connect through the serve process: %v\n%s", err, logs)
	}
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
	cmd.Process.Signal(syscall.SIGTERM)
	waitErr := make(chan error, 1)
	go func() { waitErr <- cmd.Wait() }()
	select {
	case err := <-waitErr:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v, want 0\n%s", err, logs)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("still running 30 s after SIGTERM\n%s", logs)
	}
	t.Logf("exited %v after SIGTERM (drain_timeout 2s)", time.Since(start).Round(10*time.Millisecond))
	_, err = conn.Exec(ctx, "select 1")
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

func (l *logLines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
