package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/waypoint-proxy/waypoint/internal/config"
	"github.com/waypoint-proxy/waypoint/internal/demo"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/server"
	"github.com/waypoint-proxy/waypoint/internal/tailnet"
	"github.com/waypoint-proxy/waypoint/internal/tailnet/devnet"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
	"github.com/waypoint-proxy/waypoint/internal/tunnelnode"
)

const tunnelTestTimeout = 2 * time.Minute

// tunnelTestConfig is a Waypoint configuration for an in-process tailnet
// and a pgtest cluster; %s are the state directory, auth key, control URL,
// backend address and admin password.
const tunnelTestConfig = `
[tailscale]
hostname = "waypoint-db"
state_dir = %q
auth_key = %q
control_url = %q
ephemeral = true

[[listeners]]
name = "pg-main"
listen = ":5432"
mode = "postgres"
backend = %q
tls_mode = "off"

[listeners.postgres]
admin_user = "waypoint_admin"
admin_password = %q
backend_tls = "disable"
`

// startTestApp starts Waypoint on dn in front of c; it is shut down at the
// test's cleanup.
func startTestApp(t *testing.T, dn *devnet.Net, c *pgtest.Cluster) *server.App {
	t.Helper()
	text := fmt.Sprintf(tunnelTestConfig, testkit.StateDir(t), dn.AuthKey(), dn.ControlURL, c.Addr(), c.AdminPassword)
	cfg, err := config.Parse([]byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), tunnelTestTimeout)
	defer cancel()
	a, err := server.Start(ctx, cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatalf("server.Start: %v", err)
	}
	t.Cleanup(func() { a.Shutdown(time.Second) })
	return a
}

// testWriter sends log lines to the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func TestTunnel_EndToEnd(t *testing.T) {
	c := pgtest.Start(t, pgtest.Options{})
	c.CreateAppDatabase(t, "appdb")
	ctx, cancel := context.WithTimeout(context.Background(), tunnelTestTimeout)
	defer cancel()
	dn, err := devnet.Start(ctx, devnet.Options{})
	if err != nil {
		t.Fatalf("devnet: %v", err)
	}
	t.Cleanup(func() { dn.Close() })
	a := startTestApp(t, dn, c)

	tun, err := tunnelnode.Start(ctx, tunnelnode.Spec{
		Hostname:   "ci-runner",
		StateDir:   testkit.StateDir(t),
		AuthKey:    dn.AuthKey(),
		ControlURL: dn.ControlURL,
		Ephemeral:  true,
		Local:      "127.0.0.1:0",
		Target:     "waypoint-db:5432", // by MagicDNS name, as a user would
	}, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err != nil {
		t.Fatalf("tunnelnode.Start: %v", err)
	}
	t.Cleanup(func() {
		if err := tun.Close(); err != nil {
			t.Errorf("tunnel Close: %v", err)
		}
	})
	grantTunnel(t, ctx, dn, a, tun, "alice@example.com",
		`{"backends":{"pg-main":{"pg":{"databases":{"appdb":{"permissions":["readonly"]}}}}}}`)

	conn, err := pgx.Connect(ctx, fmt.Sprintf("postgres://anyone:ignored@%s/appdb?sslmode=disable", tun.Local()))
	if err != nil {
		t.Fatalf("connect through the tunnel: %v", err)
	}
	defer conn.Close(context.Background())
	var role string
	var items int
	if err := conn.QueryRow(ctx, "SELECT current_user, (SELECT count(*) FROM public.items)").Scan(&role, &items); err != nil {
		t.Fatalf("query through the tunnel: %v", err)
	}
	if role != "wp_alice_ci_runner_appdb" || items != 3 {
		t.Errorf("got role %q and %d items, want %q (the tunnel's node is the caller) and 3", role, items, "wp_alice_ci_runner_appdb")
	}
}

// grantTunnel makes the tunnel's node belong to login with grant and waits
// until Waypoint's node sees it.
func grantTunnel(t *testing.T, ctx context.Context, dn *devnet.Net, a *server.App, tun *tunnelnode.Tunnel, login, grant string) {
	t.Helper()
	v4, _ := tun.Node().Addrs()
	if err := dn.SetIdentity(v4, login); err != nil {
		t.Fatal(err)
	}
	if err := dn.SetGrant(v4, tailnet.DefaultCapability, json.RawMessage(grant)); err != nil {
		t.Fatal(err)
	}
	if err := demo.WaitForPeer(ctx, a.Node(), v4, login); err != nil {
		t.Fatal(err)
	}
}

func TestTunnel_FlagErrors(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no target", []string{"tunnel", "-authkey", "k"}, "-target is required"},
		{"bad log format", []string{"tunnel", "-target", "waypoint-db:5432", "-log-format", "xml"}, "-log-format"},
		{"extra argument", []string{"tunnel", "-target", "waypoint-db:5432", "extra"}, `unexpected argument "extra"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, stderr := runCmd(t, tt.args...)
			if code != 2 || !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("got exit %d, stderr %q; want 2 and %q", code, stderr, tt.wantErr)
			}
		})
	}
}

// TestStart_MetricsPortTaken: a [metrics] listen address that cannot be
// bound fails server.Start with an error naming it, instead of leaving a
// proxy whose /readyz never answers; the node and the listener it had
// started are shut down again.
func TestStart_MetricsPortTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	c := pgtest.Shared(t, pgtest.Options{})
	ctx, cancel := context.WithTimeout(context.Background(), tunnelTestTimeout)
	defer cancel()
	dn, err := devnet.Start(ctx, devnet.Options{})
	if err != nil {
		t.Fatalf("devnet: %v", err)
	}
	t.Cleanup(func() { dn.Close() })
	text := fmt.Sprintf(tunnelTestConfig, testkit.StateDir(t), dn.AuthKey(), dn.ControlURL, c.Addr(), c.AdminPassword) +
		fmt.Sprintf("\n[metrics]\nlisten = %q\n", taken.Addr().String())
	cfg, err := config.Parse([]byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	a, err := server.Start(ctx, cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	if err == nil {
		a.Shutdown(time.Second)
		t.Fatal("server.Start succeeded with its metrics port taken")
	}
	if !strings.Contains(err.Error(), "metrics: listen on "+taken.Addr().String()) {
		t.Errorf("server.Start: %v, want an error naming the metrics address", err)
	}
}
