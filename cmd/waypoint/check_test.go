package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// runCmd runs the waypoint command line with args and returns its exit code
// and outputs.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(args, &out, &errb)
	return code, out.String(), errb.String()
}

func TestCheck_SpecExample(t *testing.T) {
	t.Setenv("PG_ADMIN_PASSWORD", "s3cret$$")
	code, out, errOut := runCmd(t, "check", "-config", "testdata/spec-example.toml")
	if code != 0 {
		t.Fatalf("exit %d, want 0; stderr: %s", code, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if lines[0] != "ok" || len(lines) != 3 || !strings.HasPrefix(lines[1], "pg-main") ||
		!strings.HasPrefix(lines[2], `WARN listener pg-main: backend_tls = "prefer" to 10.0.1.10:5432`) {
		t.Errorf("got output %q, want \"ok\", one line for pg-main and a backend_tls warning", out)
	}
	if strings.Contains(out, "s3cret") {
		t.Errorf("check printed the admin password: %q", out)
	}
}

// base is a valid configuration; each broken case replaces one line of it.
const base = `[tailscale]
hostname = "waypoint-db"

[[listeners]]
name = "pg-main"
listen = ":5432"
mode = "postgres"
backend = "127.0.0.1:5432"
tls_mode = "off"

[listeners.postgres]
admin_user = "waypoint_admin"
`

func TestCheck_BrokenConfigs(t *testing.T) {
	tests := []struct {
		name       string
		config     string
		wantInErrs []string // each must appear in stderr
	}{
		{"unknown key", strings.Replace(base, `mode = "postgres"`, "mode = \"postgres\"\nbakend = \"x\"", 1),
			[]string{":8:", "listeners[0].bakend"}},
		{"duplicate listener name", base + `
[[listeners]]
name = "pg-main"
listen = ":5433"
mode = "postgres"
backend = "127.0.0.1:5432"
tls_mode = "off"
[listeners.postgres]
admin_user = "a"
`, []string{":15:", "listeners[1].name"}},
		{"duplicate listen address", base + `
[[listeners]]
name = "pg-two"
listen = ":5432"
mode = "postgres"
backend = "127.0.0.1:5432"
tls_mode = "off"
[listeners.postgres]
admin_user = "a"
`, []string{":16:", "listeners[1].listen"}},
		{"postgres listener without [listeners.postgres]", strings.Split(base, "[listeners.postgres]")[0],
			[]string{":4:", "listeners[0]", "[listeners.postgres]"}},
		{"missing admin_user", strings.Replace(base, `admin_user = "waypoint_admin"`, `admin_database = "postgres"`, 1),
			[]string{"listeners[0].postgres.admin_user"}},
		{"cert_file without key_file", strings.Replace(base, `tls_mode = "off"`, "tls_mode = \"off\"\ncert_file = \"/etc/x.crt\"", 1),
			[]string{":10:", "listeners[0].cert_file"}},
		{"bad enum", strings.Replace(base, `tls_mode = "off"`, `tls_mode = "sometimes"`, 1),
			[]string{":9:", "listeners[0].tls_mode", "off"}},
		{"unset variable", strings.Replace(base, `admin_user = "waypoint_admin"`, "admin_user = \"waypoint_admin\"\nadmin_password = \"${WAYPOINT_TEST_UNSET_VAR}\"", 1),
			[]string{":13:", "WAYPOINT_TEST_UNSET_VAR"}},
		{"syntax error", base + "\n[broken\n", []string{":14:", "syntax error"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "waypoint.toml")
			if err := os.WriteFile(path, []byte(tt.config), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errOut := runCmd(t, "check", "-config", path)
			if code == 0 {
				t.Fatalf("exit 0, want non-zero; stdout: %s", out)
			}
			for _, want := range tt.wantInErrs {
				if !strings.Contains(errOut, want) {
					t.Errorf("stderr %q does not contain %q", errOut, want)
				}
			}
		})
	}
}

func TestHelpAndUnknownCommand(t *testing.T) {
	if code, out, _ := runCmd(t, "--help"); code != 0 || !strings.Contains(out, "waypoint check") {
		t.Errorf("--help: exit %d, output %q", code, out)
	}
	if code, _, errOut := runCmd(t, "frobnicate"); code != 2 || !strings.Contains(errOut, "unknown command") {
		t.Errorf("unknown command: exit %d, stderr %q", code, errOut)
	}
	if code, _, errOut := runCmd(t, "check", "-h"); code != 0 || !strings.Contains(errOut, "-config") {
		t.Errorf("check -h: exit %d, stderr %q", code, errOut)
	}
}

func TestCheck_BackendTLSWarnings(t *testing.T) {
	tests := []struct {
		backend, backendTLS string
		warn                bool
	}{
		{"10.0.1.10:5432", "prefer", true},
		{"db.internal:5432", "disable", true},
		{"[fd00::1]:5432", "prefer", true},
		{"10.0.1.10:5432", "require", false},
		{"10.0.1.10:5432", "verify-full", false},
		{"127.0.0.1:5432", "prefer", false},
		{"127.0.0.2:5432", "disable", false},
		{"[::1]:5432", "disable", false},
		{"localhost:5432", "prefer", false},
	}
	for _, tt := range tests {
		t.Run(tt.backend+" "+tt.backendTLS, func(t *testing.T) {
			code, out, errOut := runCmd(t, "check", "-config", backendConfig(t, tt.backend, tt.backendTLS, ""))
			if code != 0 {
				t.Fatalf("exit %d, want 0 (a warning is not a failure); stderr:\n%s", code, errOut)
			}
			warned := strings.Contains(out, "WARN listener pg-main: backend_tls = \""+tt.backendTLS+"\" to "+tt.backend+", which is not a loopback address")
			if warned != tt.warn || (!tt.warn && strings.Contains(out, "WARN")) {
				t.Fatalf("got output\n%s\nwant a backend_tls warning: %v", out, tt.warn)
			}
			if tt.warn && (!strings.Contains(out, "man in the middle") && !strings.Contains(out, "unencrypted") || !strings.Contains(out, `use backend_tls = "verify-full"`)) {
				t.Errorf("the warning does not say why and what to use instead:\n%s", out)
			}
		})
	}
}
