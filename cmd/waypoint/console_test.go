package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/redis/go-redis/v9"

	"github.com/waypoint-proxy/waypoint/internal/console"
	"github.com/waypoint-proxy/waypoint/internal/coord/redistest"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

// fatal57P01 reports whether err is the FATAL 57P01 an operator's
// termination sends.
func fatal57P01(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "57P01" && pe.Severity == "FATAL" && strings.Contains(pe.Message, "terminated by a Waypoint operator")
}

// TestConsole_CLI: `waypoint sessions` prints a live session opened
// through the tailnet with login, machine, role and bytes, and `waypoint
// terminate` ends it (the client sees 57P01). An operator with "console":
// "view" may list but not terminate; a caller without the capability gets
// 403 saying which grant is needed; the loopback face wants the token.
func TestConsole_CLI(t *testing.T) {
	r := newConsoleRig(t, 1, "")
	in := r.apps[0]
	ops := r.client("ops@example.com", "ops-laptop", adminGrant)
	viewer := r.client("viewer@example.com", "desk", viewGrant)
	alice := r.client("alice@example.com", "cli-laptop", readonlyGrant)
	conn := r.connect(alice, in)
	ctx := context.Background()
	if _, err := conn.Exec(ctx, "select count(*) from public.items"); err != nil {
		t.Fatal(err)
	}
	opsURL, viewerURL, aliceURL := r.consoleVia(ops, in), r.consoleVia(viewer, in), r.consoleVia(alice, in)

	code, out, errOut := cli("sessions", "-console", opsURL)
	if code != 0 {
		t.Fatalf("waypoint sessions (admin): exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("waypoint sessions:\n%s", out)
	for _, want := range []string{"alice@example.com", "cli-laptop", "pg-main", "appdb", "wp_alice_cli_laptop_appdb", "readonly", "relaying", in.app.ConsoleInstance()} {
		if !strings.Contains(out, want) {
			t.Errorf("waypoint sessions lacks %q:\n%s", want, out)
		}
	}
	var list struct {
		Sessions []console.Session `json:"sessions"`
	}
	code, out, errOut = cli("sessions", "-console", opsURL, "-json", "-login", "alice@example.com", "-listener", "pg-main")
	if err := json.Unmarshal([]byte(out), &list); code != 0 || err != nil || len(list.Sessions) != 1 {
		t.Fatalf("waypoint sessions -json: exit %d, %v\n%s%s", code, err, out, errOut)
	}
	t.Logf("waypoint sessions -json -login alice@example.com:\n%s", out)
	s := list.Sessions[0]
	if s.Login != "alice@example.com" || s.Machine != "cli-laptop" || s.Role != "wp_alice_cli_laptop_appdb" || s.BytesIn == 0 || s.BytesOut == 0 ||
		s.BackendPID == 0 || s.Node != alice.NodeID() || !strings.HasPrefix(s.ClientAddr, alice.Addr().String()+":") {
		t.Errorf("session = %+v, want alice's with role, node, client address, backend pid and bytes", s)
	}

	t.Run("viewer lists but cannot terminate", func(t *testing.T) {
		if code, out, errOut := cli("sessions", "-console", viewerURL); code != 0 || !strings.Contains(out, "alice@example.com") {
			t.Errorf("waypoint sessions (view): exit %d\n%s%s", code, out, errOut)
		}
		code, out, errOut := cli("terminate", "-console", viewerURL, s.ID)
		if code != 1 || !strings.Contains(errOut, "403") || !strings.Contains(errOut, `"console": "admin"`) {
			t.Errorf("waypoint terminate (view): exit %d, stderr %q; want 1 and a 403 naming the admin grant\n%s", code, errOut, out)
		}
	})
	t.Run("no console grant", func(t *testing.T) {
		code, _, errOut := cli("sessions", "-console", aliceURL)
		if code != 1 || !strings.Contains(errOut, "403") || !strings.Contains(errOut, "alice@example.com (cli-laptop) has no console access") ||
			!strings.Contains(errOut, `"console": "view"`) {
			t.Errorf("waypoint sessions (no grant): exit %d, stderr %q; want 1 and a 403 naming the grant to ask for", code, errOut)
		}
	})
	t.Run("loopback face needs the token", func(t *testing.T) {
		local := "http://" + in.local
		if code, _, errOut := cli("sessions", "-console", local); code != 1 || !strings.Contains(errOut, "401") {
			t.Errorf("loopback without token: exit %d, %q; want 1 and 401", code, errOut)
		}
		if code, out, errOut := cli("sessions", "-console", local, "-token-file", in.tokenFile); code != 0 || !strings.Contains(out, "alice@example.com") {
			t.Errorf("loopback with the token: exit %d\n%s%s", code, out, errOut)
		}
		if st, err := os.Stat(in.tokenFile); err != nil || st.Mode().Perm() != 0o600 {
			t.Errorf("token file: %v, mode %v; want 0600", err, st.Mode().Perm())
		}
	})

	code, out, errOut = cli("terminate", "-console", opsURL, s.ID)
	if code != 0 || !strings.Contains(out, "terminated "+s.ID) || !strings.Contains(out, "alice@example.com") {
		t.Fatalf("waypoint terminate: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("waypoint terminate:\n%s", out)
	if _, err := conn.Exec(ctx, "select 1"); !fatal57P01(err) {
		t.Errorf("alice after waypoint terminate: got %v, want FATAL 57P01 saying an operator terminated the session", err)
	}
	if code, _, errOut := cli("terminate", "-console", opsURL, s.ID); code != 1 || !strings.Contains(errOut, "404") {
		t.Errorf("terminating it again: exit %d, %q; want 1 and 404", code, errOut)
	}

	t.Run("terminate every session of an identity", func(t *testing.T) {
		c1, c2 := r.connect(alice, in), r.connect(alice, in)
		code, out, errOut := cli("terminate", "-console", opsURL, "-login", "alice@example.com")
		if code != 0 || strings.Count(out, "terminated ") != 2 {
			t.Fatalf("waypoint terminate -login: exit %d\n%s%s", code, out, errOut)
		}
		for _, c := range []interface {
			Exec(context.Context, string, ...any) (pgconn.CommandTag, error)
		}{c1, c2} {
			if _, err := c.Exec(ctx, "select 1"); !fatal57P01(err) {
				t.Errorf("after terminate -login: got %v, want 57P01", err)
			}
		}
	})

	testkit.WaitFor(t, 20*time.Second, "the audit log to record the terminations", func() bool {
		return strings.Count(readFile(in.auditLog), `"kind":"console"`) >= 3
	})
	audit := readFile(in.auditLog)
	for _, want := range []string{`"action":"terminate"`, `"by":"ops@example.com"`, `"by_machine":"ops-laptop"`, `"via":"tailnet"`, `"login":"alice@example.com"`, `"outcome":"terminated"`} {
		if !strings.Contains(audit, want) {
			t.Errorf("audit log lacks %s:\n%s", want, audit)
		}
	}
	if logs := in.logs.String(); !strings.Contains(logs, "console action") || !strings.Contains(logs, "by=ops@example.com") {
		t.Errorf("log lacks the console actions with the operator:\n%s", logs)
	}
}

// TestConsole_API: the JSON API through the tailnet — view, act and none —
// and what it shows: identities against max_conns, this instance, recent
// refusals with their SQLSTATE; never a query text.
func TestConsole_API(t *testing.T) {
	r := newConsoleRig(t, 1, "")
	in := r.apps[0]
	ops := r.client("ops@example.com", "ops-laptop", adminGrant)
	viewer := r.client("viewer@example.com", "desk", viewGrant)
	alice := r.client("alice@example.com", "api-laptop", `{"limits":{"max_conns":3},`+strings.TrimPrefix(readonlyGrant, "{"))
	mallory := r.client("mallory@example.com", "api-evil", `{"backends":{"pg-main":{"pg":{"databases":{"billing":{"permissions":["readonly"]}}}}}}`)
	conn := r.connect(alice, in)
	ctx := context.Background()
	const needle = "needle_7d3f_secret_literal"
	if _, err := conn.Exec(ctx, "select '"+needle+"'"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.tryConnect(mallory, in); err == nil {
		t.Fatal("mallory connected to appdb without a grant for it")
	}
	opsURL, viewerURL, malloryURL := r.consoleVia(ops, in), r.consoleVia(viewer, in), r.consoleVia(mallory, in)

	tests := []struct {
		name, method, url string
		want              int
		wantBody          []string
	}{
		{"admin: sessions", "GET", opsURL + "/api/sessions", 200, []string{`"login": "alice@example.com"`, `"state": "relaying"`}},
		{"viewer: identities", "GET", viewerURL + "/api/identities", 200, []string{`"login": "alice@example.com"`, `"max_conns": 3`, `"sessions": 1`}},
		{"viewer: instances", "GET", viewerURL + "/api/instances", 200, []string{`"hostname": "waypoint-a"`, `"health": "ok"`, `"self": true`, `"sessions": 1`}},
		{"viewer: refusals", "GET", viewerURL + "/api/refusals", 200, []string{`"login": "mallory@example.com"`, `"reason": "no_database"`, `"sqlstate": "28000"`, `"database": "appdb"`}},
		{"viewer: the page", "GET", viewerURL + "/", 200, []string{"alice@example.com", "wp_alice_api_laptop_appdb", "mallory@example.com"}},
		{"viewer: no terminate", "POST", viewerURL + "/api/identities/alice@example.com/terminate", 403, []string{`\"console\": \"admin\"`}},
		{"viewer: no revalidate", "POST", viewerURL + "/api/identities/alice@example.com/revalidate", 403, []string{"view access"}},
		{"none: sessions", "GET", malloryURL + "/api/sessions", 403, []string{"mallory@example.com (api-evil) has no console access", `\"console\": \"view\"`}},
		{"none: page", "GET", malloryURL + "/", 403, []string{"has no console access"}},
		{"admin: revalidate", "POST", opsURL + "/api/identities/alice@example.com/revalidate", 200, []string{`"action": "revalidate"`, `"checked": 1`}},
		{"admin: cross-site form post", "POST", opsURL + "/api/identities/alice@example.com/terminate", 403, []string{"cross-origin"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest(tt.method, tt.url, nil)
			if strings.Contains(tt.name, "cross-site") {
				req.Header.Set("Origin", "https://evil.example")
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			body := string(b)
			if resp.StatusCode != tt.want {
				t.Fatalf("%s %s: %d, want %d\n%s", tt.method, tt.url, resp.StatusCode, tt.want, body)
			}
			for _, w := range tt.wantBody {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %s:\n%s", w, body)
				}
			}
			if strings.Contains(body, needle) {
				t.Errorf("a query text reached the console:\n%s", body)
			}
		})
	}
	if _, err := conn.Exec(ctx, "select 1"); err != nil {
		t.Errorf("alice's session after a cross-site post and a re-check: %v, want it open", err)
	}
}

// TestConsole_TwoInstancesThroughRedis: two Waypoint instances sharing a
// Redis each show the other's sessions and both instances; terminating,
// through A's console, a session B serves ends it on B (57P01).
func TestConsole_TwoInstancesThroughRedis(t *testing.T) {
	rs := redistest.Start(t)
	r := newConsoleRig(t, 2, rs.Addr())
	a, b := r.apps[0], r.apps[1]
	ops := r.client("ops@example.com", "ops-laptop", adminGrant)
	alice := r.client("alice@example.com", "redis-laptop", readonlyGrant)
	bob := r.client("bob@example.com", "redis-desktop", readonlyGrant)
	onB := r.connect(alice, b)
	r.connect(bob, a)
	viaA, viaB := r.consoleVia(ops, a), r.consoleVia(ops, b)
	ctx := context.Background()

	for name, url := range map[string]string{"A": viaA, "B": viaB} {
		c := &console.Client{BaseURL: url}
		ss, unreachable, err := c.Sessions(ctx, console.Filter{})
		if err != nil || len(unreachable) != 0 {
			t.Fatalf("sessions via %s: %v, unreachable %v", name, err, unreachable)
		}
		where := map[string]string{}
		for _, s := range ss {
			where[s.Login] = s.Instance
		}
		if where["alice@example.com"] != b.app.ConsoleInstance() || where["bob@example.com"] != a.app.ConsoleInstance() {
			t.Errorf("via %s: sessions on %v, want alice on B (%s) and bob on A (%s)", name, where, b.app.ConsoleInstance(), a.app.ConsoleInstance())
		}
	}
	code, out, errOut := cli("sessions", "-console", viaA)
	if code != 0 || !strings.Contains(out, b.app.ConsoleInstance()) || !strings.Contains(out, "alice@example.com") {
		t.Errorf("waypoint sessions via A: exit %d\n%s%s", code, out, errOut)
	}
	t.Logf("waypoint sessions via A:\n%s", out)

	resp, err := http.Get(viaB + "/api/instances")
	if err != nil {
		t.Fatal(err)
	}
	var inst struct {
		Instances []console.Instance `json:"instances"`
	}
	json.NewDecoder(resp.Body).Decode(&inst)
	resp.Body.Close()
	hosts := map[string]console.Instance{}
	for _, i := range inst.Instances {
		hosts[i.Hostname] = i
	}
	if len(inst.Instances) != 2 || hosts["waypoint-a"].Health != "ok" || hosts["waypoint-b"].Health != "ok" || !hosts["waypoint-b"].Self ||
		hosts["waypoint-a"].Sessions == nil || *hosts["waypoint-a"].Sessions != 1 || hosts["waypoint-a"].LastHeartbeat.IsZero() {
		t.Errorf("instances via B = %+v, want both, healthy, B itself, A with one session", inst.Instances)
	}

	code, out, errOut = cli("terminate", "-console", viaA, "-json", sessionOf(t, viaA, "alice@example.com"))
	if code != 0 || !strings.Contains(out, `"instance": "`+b.app.ConsoleInstance()+`"`) {
		t.Fatalf("waypoint terminate via A of a session on B: exit %d\n%s%s", code, out, errOut)
	}
	if _, err := onB.Exec(ctx, "select 1"); !fatal57P01(err) {
		t.Errorf("alice on B after terminate via A: got %v, want 57P01", err)
	}
	testkit.WaitFor(t, 20*time.Second, "B's audit log to record who terminated", func() bool {
		return strings.Contains(readFile(b.auditLog), `"by":"ops@example.com"`)
	})

	noLoginsAtRest(t, rs.Addr(), "example.com")

	b.app.Shutdown(time.Second) // B leaves the fleet
	resp, err = http.Get(viaA + "/api/instances")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&inst)
	resp.Body.Close()
	if len(inst.Instances) != 1 || inst.Instances[0].Hostname != "waypoint-a" {
		t.Errorf("instances after B stopped = %+v, want only A", inst.Instances)
	}
}

// noLoginsAtRest fails the test when any key or value in the Redis at addr
// contains needle: sessions cross Redis only in Pub/Sub messages.
func noLoginsAtRest(t *testing.T, addr, needle string) {
	t.Helper()
	ctx := context.Background()
	rc := redis.NewClient(&redis.Options{Addr: addr})
	defer rc.Close()
	keys, err := rc.Keys(ctx, "*").Result()
	if err != nil || len(keys) == 0 {
		t.Fatalf("KEYS: %v, %d keys", err, len(keys))
	}
	for _, k := range keys {
		var dump string
		switch typ := rc.Type(ctx, k).Val(); typ {
		case "string":
			dump = rc.Get(ctx, k).Val()
		case "hash":
			dump = fmt.Sprint(rc.HGetAll(ctx, k).Val())
		case "zset":
			dump = fmt.Sprint(rc.ZRangeWithScores(ctx, k, 0, -1).Val())
		default:
			t.Errorf("key %q of unexpected type %s", k, typ)
		}
		if strings.Contains(k, needle) || strings.Contains(dump, needle) {
			t.Errorf("Redis key %q holds %q at rest: %s", k, needle, dump)
		}
	}
}

// sessionOf returns the ID of login's one session as the console at url
// lists it.
func sessionOf(t *testing.T, url, login string) string {
	t.Helper()
	ss, _, err := (&console.Client{BaseURL: url}).Sessions(context.Background(), console.Filter{Login: login})
	if err != nil || len(ss) != 1 {
		t.Fatalf("sessions of %s: %+v, %v", login, ss, err)
	}
	return ss[0].ID
}

func TestTerminate_FlagErrors(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"terminate"}, "give a session ID or -login"},
		{[]string{"terminate", "1-abc", "-login", "alice@example.com"}, "not both"},
		{[]string{"terminate", "-bogus"}, "flag provided but not defined"},
		{[]string{"sessions", "extra"}, "unexpected argument"},
	}
	for _, tt := range tests {
		code, _, errOut := cli(tt.args...)
		if code != 2 || !strings.Contains(errOut, tt.want) {
			t.Errorf("%v: exit %d, %q; want 2 and %q", tt.args, code, errOut, tt.want)
		}
	}
}

func TestSizeText(t *testing.T) {
	for n, want := range map[int64]string{0: "0B", 999: "999B", 1000: "1.0kB", 45_300: "45.3kB", 2_500_000: "2.5MB", 3e9: "3.0GB"} {
		if got := sizeText(n); got != want {
			t.Errorf("sizeText(%d) = %q, want %q", n, got, want)
		}
	}
}
