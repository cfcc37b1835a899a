package pgtest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestConfLine(t *testing.T) {
	tests := []struct {
		name, value, want string
	}{
		{"work_mem", "7MB", "work_mem = '7MB'\n"},
		{"cluster_name", "it's", "cluster_name = 'it''s'\n"},
		{"log_line_prefix", `%m \ `, `log_line_prefix = '%m \\ '` + "\n"},
		{"search_path", `"$user", public`, `search_path = '"$user", public'` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := confLine(setting{tt.name, tt.value}); got != tt.want {
				t.Errorf("confLine(%q, %q) = %q, want %q", tt.name, tt.value, got, tt.want)
			}
		})
	}
}

func TestOptionsNormalize(t *testing.T) {
	tests := []struct {
		name     string
		opts     Options
		wantAuth Auth
		wantErr  bool
	}{
		{"zero", Options{}, AuthSCRAM, false},
		{"md5", Options{Auth: AuthMD5}, AuthMD5, false},
		{"password", Options{Auth: AuthPassword}, AuthPassword, false},
		{"unknown auth", Options{Auth: "trust"}, "", true},
		{"negative version", Options{Version: -1}, "", true},
		{"bad setting name", Options{Settings: map[string]string{"a = 1\nb": "x"}}, "", true},
		{"line break in value", Options{Settings: map[string]string{"work_mem": "1MB\nfsync = on"}}, "", true},
		{"dotted setting", Options{Settings: map[string]string{"waypoint.presets": "readonly"}}, AuthSCRAM, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.opts.normalize()
			if (err != nil) != tt.wantErr {
				t.Fatalf("normalize() error = %v, want error %t", err, tt.wantErr)
			}
			if err == nil && got.Auth != tt.wantAuth {
				t.Errorf("normalize().Auth = %q, want %q", got.Auth, tt.wantAuth)
			}
		})
	}
}

func TestSettings_LaterOverride(t *testing.T) {
	list := settings(Options{Auth: AuthMD5, LogStatements: true, Settings: map[string]string{"max_connections": "10"}}, "/d")
	got := map[string]string{}
	for _, s := range list {
		got[s.name] = s.value // later lines win, as in postgresql.conf
	}
	for name, want := range map[string]string{
		"max_connections":         "10",
		"password_encryption":     "md5",
		"log_statement":           "all",
		"unix_socket_directories": "/d",
		"listen_addresses":        "127.0.0.1",
	} {
		if got[name] != want {
			t.Errorf("effective %s = %q, want %q", name, got[name], want)
		}
	}
}

func TestHBAConf(t *testing.T) {
	want := "local all all trust\nhost all all 127.0.0.1/32 md5\n"
	if got := hbaConf(AuthMD5); got != want {
		t.Errorf("hbaConf(md5) = %q, want %q", got, want)
	}
}

func TestSkippable(t *testing.T) {
	missing := fmt.Errorf("wrapped: %w", &missingError{what: "PostgreSQL 99"})
	tests := []struct {
		ci   string
		err  error
		want bool
	}{
		{"", missing, true},
		{"false", missing, true},
		{"true", missing, false},
		{"1", missing, false},
		{"", errors.New("initdb failed"), false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("CI=%q/%v", tt.ci, tt.err), func(t *testing.T) {
			t.Setenv("CI", tt.ci)
			if got := skippable(tt.err); got != tt.want {
				t.Errorf("skippable(%v) with CI=%q = %t, want %t", tt.err, tt.ci, got, tt.want)
			}
		})
	}
}

func TestFindInstallation_Missing(t *testing.T) {
	_, err := findInstallation(99)
	if _, ok := errors.AsType[*missingError](err); !ok {
		t.Fatalf("findInstallation(99) error = %v, want a missingError", err)
	}
}

func TestVersions_Ascending(t *testing.T) {
	v := Versions()
	for i := 1; i < len(v); i++ {
		if v[i] <= v[i-1] {
			t.Errorf("Versions() = %v, want strictly ascending", v)
		}
	}
}

func TestSharedKey(t *testing.T) {
	a := sharedKey(Options{Version: 15, Auth: AuthSCRAM, Settings: map[string]string{"a": "1", "b": "2"}})
	b := sharedKey(Options{Version: 15, Auth: AuthSCRAM, Settings: map[string]string{"b": "2", "a": "1"}})
	if a != b {
		t.Errorf("keys differ for equal settings: %q, %q", a, b)
	}
	for _, other := range []Options{
		{Version: 18, Auth: AuthSCRAM, Settings: map[string]string{"a": "1", "b": "2"}},
		{Version: 15, Auth: AuthMD5, Settings: map[string]string{"a": "1", "b": "2"}},
		{Version: 15, Auth: AuthSCRAM, LogStatements: true, Settings: map[string]string{"a": "1", "b": "2"}},
		{Version: 15, Auth: AuthSCRAM, Settings: map[string]string{"a": "1 b=2"}},
	} {
		if k := sharedKey(other); k == a {
			t.Errorf("sharedKey(%+v) = %q, same as for different options", other, k)
		}
	}
}

func TestConnString(t *testing.T) {
	c := &Cluster{Host: "127.0.0.1", Port: 5433}
	tests := []struct{ user, password, database string }{
		{"waypoint_admin", "s3cret", "postgres"},
		{"we@ird:user", "p@ss/w:rd?#%", "app db"},
		{"nopass", "", "appdb"},
	}
	for _, tt := range tests {
		t.Run(tt.user, func(t *testing.T) {
			s := c.ConnString(tt.user, tt.password, tt.database)
			cfg, err := pgx.ParseConfig(s)
			if err != nil {
				t.Fatalf("ParseConfig(%q): %v", s, err)
			}
			if cfg.Host != "127.0.0.1" || cfg.Port != 5433 || cfg.User != tt.user || cfg.Database != tt.database || cfg.TLSConfig != nil {
				t.Errorf("ConnString = %q parses to host %q port %d user %q db %q tls %t; want 127.0.0.1 5433 %q %q false",
					s, cfg.Host, cfg.Port, cfg.User, cfg.Database, cfg.TLSConfig != nil, tt.user, tt.database)
			}
			if tt.password != "" && cfg.Password != tt.password {
				t.Errorf("ConnString = %q parses to password %q, want %q", s, cfg.Password, tt.password)
			}
		})
	}
}
