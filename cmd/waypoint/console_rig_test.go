package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/waypoint-proxy/waypoint/internal/config"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/server"
	"github.com/waypoint-proxy/waypoint/internal/tailnet"
	"github.com/waypoint-proxy/waypoint/internal/tailnettest"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
	"github.com/waypoint-proxy/waypoint/internal/tunnel"
)

// consoleTestConfig is a Waypoint with the console on the tailnet (:8080)
// and on loopback; %s are hostname, state directory, auth key, control
// URL, loopback address, token file, extra top-level TOML, backend, admin
// password and audit log.
const consoleTestConfig = `
[tailscale]
hostname = %q
state_dir = %q
auth_key = %q
control_url = %q
ephemeral = true

[revalidation]
interval = "0"

[console]
listen = ":8080"
local = %q
local_token_file = %q

%s

[[listeners]]
name = "pg-main"
listen = ":5432"
mode = "postgres"
backend = %q
tls_mode = "off"
audit_log = %q

[listeners.postgres]
admin_user = "waypoint_admin"
admin_password = %q
backend_tls = "disable"
`

// Grants of the console tests.
const (
	adminGrant    = `{"console":"admin"}`
	viewGrant     = `{"console":"view"}`
	readonlyGrant = `{"backends":{"pg-main":{"pg":{"databases":{"appdb":{"permissions":["readonly"]}}}}}}`
)

// consoleRig is one or more Waypoint instances (the whole app, as `serve`
// runs it) with the console on an in-process tailnet, in front of a real
// PostgreSQL.
type consoleRig struct {
	t    *testing.T
	tn   *tailnettest.Tailnet
	pg   *pgtest.Cluster
	apps []*consoleInstance
}

// consoleInstance is one running Waypoint and where to find it.
type consoleInstance struct {
	app       *server.App
	hostname  string
	local     string // the loopback face, host:port
	tokenFile string
	auditLog  string
	logs      *testkit.SyncBuffer
}

// newConsoleRig starts n instances; with redisAddr they share it.
func newConsoleRig(t *testing.T, n int, redisAddr string) *consoleRig {
	t.Helper()
	pg := pgtest.Shared(t, pgtest.Options{})
	pg.CreateAppDatabase(t, "appdb")
	r := &consoleRig{t: t, tn: tailnettest.New(t), pg: pg}
	extra := ""
	if redisAddr != "" {
		extra = fmt.Sprintf("[redis]\naddress = %q\nkey_prefix = %q\n", redisAddr, "wp-"+strings.ToLower(t.Name())+":")
	}
	for i := range n {
		r.apps = append(r.apps, r.start(fmt.Sprintf("waypoint-%c", 'a'+i), extra))
	}
	return r
}

// start runs one instance named hostname.
func (r *consoleRig) start(hostname, extra string) *consoleInstance {
	t := r.t
	t.Helper()
	dir := t.TempDir()
	in := &consoleInstance{hostname: hostname, local: freePort(t), tokenFile: filepath.Join(dir, "console.token"),
		auditLog: filepath.Join(dir, "audit.jsonl"), logs: &testkit.SyncBuffer{}}
	text := fmt.Sprintf(consoleTestConfig, hostname, testkit.StateDir(t), r.tn.AuthKey(), r.tn.ControlURL,
		in.local, in.tokenFile, extra, r.pg.Addr(), in.auditLog, r.pg.AdminPassword)
	cfg, err := config.Parse([]byte(text), func(string) (string, bool) { return "", false })
	if err != nil {
		t.Fatalf("config: %v\n%s", err, text)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	a, err := server.Start(ctx, cfg, slog.New(slog.NewTextHandler(in.logs, nil)))
	if err != nil {
		t.Fatalf("server.Start %s: %v\n%s", hostname, err, in.logs)
	}
	t.Cleanup(func() { a.Shutdown(time.Second) })
	in.app = a
	return in
}

// client starts a tailnet node for login on machine with grant (JSON, or
// "" for none) and waits until every instance sees it.
func (r *consoleRig) client(login, machine, grant string) *tailnettest.Client {
	r.t.Helper()
	c := r.tn.NewClient(r.t, login, machine)
	if grant != "" {
		r.tn.SetGrant(c, tailnet.DefaultCapability, json.RawMessage(grant))
	}
	r.waitSeen(c, grant)
	return c
}

// waitSeen waits until every instance's node reports c with exactly grant.
func (r *consoleRig) waitSeen(c *tailnettest.Client, grant string) {
	r.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, in := range r.apps {
		for {
			p, err := in.app.Node().WhoIs(ctx, c.Addr().String())
			if err == nil && p.LoginName == c.Login && capsAre(p.Caps, grant) {
				break
			}
			if ctx.Err() != nil {
				r.t.Fatalf("%s never saw %s with grant %s (last: %+v, %v)", in.hostname, c.Login, grant, p, err)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func capsAre(caps []json.RawMessage, grant string) bool {
	if grant == "" {
		return len(caps) == 0
	}
	var want bytes.Buffer
	json.Compact(&want, []byte(grant))
	return len(caps) == 1 && bytes.Equal(caps[0], want.Bytes())
}

// tailnetAddr is in's tailnet address on port.
func (in *consoleInstance) tailnetAddr(port int) string {
	v4, _ := in.app.Node().Addrs()
	return netip.AddrPortFrom(v4, uint16(port)).String()
}

// consoleVia returns a loopback URL that reaches in's tailnet console
// through c's node (as `waypoint tunnel` would for an operator without
// tailscaled): whoever uses it is c to the console.
func (r *consoleRig) consoleVia(c *tailnettest.Client, in *consoleInstance) string {
	r.t.Helper()
	return "http://" + tailnettest.Forward(r.t, tunnel.Options{Target: in.tailnetAddr(8080), Dial: c.Dial, DialTimeout: 20 * time.Second})
}

// connect opens a database session as c through instance in.
func (r *consoleRig) connect(c *tailnettest.Client, in *consoleInstance) *pgx.Conn {
	r.t.Helper()
	conn, err := r.tryConnect(c, in)
	if err != nil {
		r.t.Fatalf("connect as %s through %s: %v\n%s", c.Login, in.hostname, err, in.logs)
	}
	r.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func (r *consoleRig) tryConnect(c *tailnettest.Client, in *consoleInstance) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://x@%s/appdb?sslmode=disable&connect_timeout=20", in.tailnetAddr(5432)))
	if err != nil {
		r.t.Fatal(err)
	}
	cfg.DialFunc = c.Dial
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return pgx.ConnectConfig(ctx, cfg)
}

// cli runs a waypoint command in-process and returns its exit code and
// output.
func cli(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

// readFile returns the file's contents, or "" if it cannot be read.
func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}
