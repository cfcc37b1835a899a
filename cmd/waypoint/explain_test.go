package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testConfig writes a one-listener configuration for backend and returns
// its path; the admin password comes from $WP_TEST_ADMIN_PASSWORD.
func testConfig(t *testing.T, backend, extra string) string {
	t.Helper()
	cfg := fmt.Sprintf(`[tailscale]
hostname = "waypoint-test"

[[listeners]]
name = "pg-main"
listen = ":5432"
mode = "postgres"
backend = %q
tls_mode = "off"

[listeners.postgres]
admin_user = "waypoint_admin"
admin_password = "${WP_TEST_ADMIN_PASSWORD}"
admin_database = "postgres"
backend_tls = "disable"
%s`, backend, extra)
	path := filepath.Join(t.TempDir(), "waypoint.toml")
	if err := os.WriteFile(path, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// writeGrant writes grant JSON to a file and returns its path.
func writeGrant(t *testing.T, grant string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "grant.json")
	if err := os.WriteFile(path, []byte(grant), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

const readwriteGrant = `[{"backends": {"pg-main": {"pg": {"databases": {
  "appdb": {"permissions": ["readwrite"], "schemas": ["public", "app"]}}}}}}]`

func TestExplain(t *testing.T) {
	t.Setenv("WP_TEST_ADMIN_PASSWORD", "unused")
	cfg := testConfig(t, "127.0.0.1:1", "")
	tests := []struct {
		name      string
		grant     string
		extra     []string
		wantCode  int
		wantOut   []string
		unwantOut []string
	}{
		{name: "readwrite grant", grant: readwriteGrant, wantCode: 0, wantOut: []string{
			"decision: ALLOW", "preset:   readwrite", "schemas:  app (readwrite), public (readwrite)", "role: wp_alice_laptop_appdb",
			`CREATE ROLE "wp_alice_laptop_appdb" WITH LOGIN`, "PASSWORD '<redacted>'",
			`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "public" TO "wp_g_appdb_public_readwrite"`,
			`GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "app" TO "wp_g_appdb_app_readwrite"`,
			`GRANT CONNECT ON DATABASE "appdb" TO "wp_alice_laptop_appdb"`, "COMMIT;",
		}, unwantOut: []string{"SCRAM-SHA-256"}},
		{name: "preset request lowers and scopes the role", grant: readwriteGrant, extra: []string{"-preset", "readonly"}, wantCode: 0,
			wantOut: []string{"preset:   readonly (limited", "role: wp_alice_laptop_appdb_readonly",
				`GRANT SELECT ON ALL TABLES IN SCHEMA "public" TO "wp_g_appdb_public_readonly"`}},
		{name: "single grant object", grant: `{"backends": {"pg-main": {"pg": {"databases": {"*": {"permissions": ["readonly"]}}}}}}`,
			wantCode: 0, wantOut: []string{"decision: ALLOW", "preset:   readonly\n"}},
		{name: "denial: other listener", grant: `[{"backends": {"pg-other": {"pg": {"databases": {"appdb": {"permissions": ["admin"]}}}}}}]`,
			wantCode: 1, wantOut: []string{"decision: DENY", "pg-main", "alice@example.com"}, unwantOut: []string{"role:"}},
		{name: "denial: raw sql not allowed", grant: `[{"backends": {"pg-main": {"pg": {"databases": {"appdb": {"permissions": ["readonly"],
			"sql": ["GRANT INSERT ON public.audit_log TO {{.Role}}"]}}}}}}]`,
			wantCode: 1, wantOut: []string{"decision: DENY"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"explain", "-config", cfg, "-login", "alice@example.com", "-machine", "laptop",
				"-database", "appdb", "-grant", writeGrant(t, tt.grant)}, tt.extra...)
			code, out, errOut := runCmd(t, args...)
			if code != tt.wantCode {
				t.Fatalf("exit: got %d, want %d; stdout:\n%s\nstderr:\n%s", code, tt.wantCode, out, errOut)
			}
			for _, want := range tt.wantOut {
				if !strings.Contains(out, want) {
					t.Errorf("stdout lacks %q:\n%s", want, out)
				}
			}
			for _, unwanted := range tt.unwantOut {
				if strings.Contains(out, unwanted) {
					t.Errorf("stdout contains %q:\n%s", unwanted, out)
				}
			}
		})
	}
}

func TestExplain_GrantFromStdin(t *testing.T) {
	t.Setenv("WP_TEST_ADMIN_PASSWORD", "unused")
	f := explainFlags{config: testConfig(t, "127.0.0.1:1", ""), login: "bob@example.com", machine: "ci",
		node: "n", database: "appdb", grant: "-"}
	var out, errOut bytes.Buffer
	if code := explain(f, strings.NewReader(readwriteGrant), &out, &errOut); code != 0 {
		t.Fatalf("exit: got %d, want 0; stderr: %s", code, errOut.String())
	}
	if !strings.Contains(out.String(), "role: wp_bob_ci_appdb") {
		t.Errorf("stdout lacks the role:\n%s", out.String())
	}
}

func TestExplain_BadInput(t *testing.T) {
	t.Setenv("WP_TEST_ADMIN_PASSWORD", "unused")
	cfg := testConfig(t, "127.0.0.1:1", "")
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"no login", []string{"-machine", "m", "-database", "d", "-grant", "-"}, "-login"},
		{"bad JSON", []string{"-login", "a@x", "-machine", "m", "-database", "d", "-grant", writeGrant(t, "{nope")}, "not valid JSON"},
		{"unknown listener", []string{"-login", "a@x", "-machine", "m", "-database", "d", "-listener", "zz", "-grant", writeGrant(t, "[]")}, `"zz"`},
		{"bad preset", []string{"-login", "a@x", "-machine", "m", "-database", "d", "-preset", "god", "-grant", writeGrant(t, "[]")}, "-preset"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, _, errOut := runCmd(t, append([]string{"explain", "-config", cfg}, tt.args...)...)
			if code != 2 || !strings.Contains(errOut, tt.wantErr) {
				t.Errorf("got exit %d, stderr %q; want 2 and %q", code, errOut, tt.wantErr)
			}
		})
	}
}
