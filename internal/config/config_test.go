package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// envMap returns a lookupEnv backed by m.
func envMap(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

// minimal is the smallest valid configuration; every other key takes its
// default.
const minimal = `
[tailscale]
hostname = "wp"

[[listeners]]
name = "pg"
listen = ":5432"
mode = "postgres"
backend = "db:5432"
use_tailscale_tls = true

[listeners.postgres]
admin_user = "admin"
`

func mustParse(t *testing.T, src string, env map[string]string) *Config {
	t.Helper()
	c, err := Parse([]byte(src), envMap(env))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	return c
}

func TestParse_SpecExample(t *testing.T) {
	data, err := os.ReadFile("testdata/spec-example.toml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, envMap(map[string]string{"PG_ADMIN_PASSWORD": "s3cr$t${x}"}))
	if err != nil {
		t.Fatalf("Parse: %v", err)
	}
	want := &Config{
		Tailscale: Tailscale{
			Hostname:   "waypoint-db",
			StateDir:   "/var/lib/waypoint/tsnet",
			Capability: "redo.com/cap/waypoint",
		},
		Revalidation: Revalidation{Interval: time.Minute},
		Shutdown:     Shutdown{DrainTimeout: 30 * time.Second},
		Listeners: []Listener{{
			Name:             "pg-main",
			Listen:           ":5432",
			Mode:             ModePostgres,
			Backend:          "10.0.1.10:5432",
			TLSMode:          TLSOptional,
			UseTailscaleTLS:  true,
			HandshakeTimeout: 10 * time.Second,
			Postgres: &Postgres{
				AdminUser:        "waypoint_admin",
				AdminPassword:    "s3cr$t${x}",
				AdminDatabase:    "postgres",
				UserPrefix:       "wp_",
				UserTTL:          24 * time.Hour,
				CleanupInterval:  5 * time.Minute,
				BackendTLS:       BackendTLSPrefer,
				BackendAuth:      []string{"scram-sha-256", "md5"},
				MaxSpareBackends: 32,
				SpareIdleTimeout: time.Minute,
			},
		}},
	}
	want.lines = c.lines
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse(spec example):\n got %+v\nwant %+v", c, want)
		if !reflect.DeepEqual(c.Listeners, want.Listeners) {
			t.Errorf("listeners:\n got %+v %+v\nwant %+v %+v", c.Listeners[0], *c.Listeners[0].Postgres, want.Listeners[0], *want.Listeners[0].Postgres)
		}
	}
}

func TestParse_Defaults(t *testing.T) {
	c := mustParse(t, minimal, nil)
	l := c.Listeners[0]
	p := l.Postgres
	tests := []struct {
		name      string
		got, want any
	}{
		{"tailscale.state_dir", c.Tailscale.StateDir, "/var/lib/waypoint/tsnet"},
		{"tailscale.auth_key", c.Tailscale.AuthKey, ""},
		{"tailscale.control_url", c.Tailscale.ControlURL, ""},
		{"tailscale.ephemeral", c.Tailscale.Ephemeral, false},
		{"tailscale.advertise_tags", len(c.Tailscale.AdvertiseTags), 0},
		{"tailscale.capability", c.Tailscale.Capability, "redo.com/cap/waypoint"},
		{"provisioning.allow_raw_sql", c.Provisioning.AllowRawSQL, false},
		{"revalidation.interval", c.Revalidation.Interval, time.Minute},
		{"defaults.limits", c.Defaults.Limits, Limits{}},
		{"redis", c.Redis == nil, true},
		{"metrics", c.Metrics == nil, true},
		{"console", c.Console == nil, true},
		{"shutdown.drain_timeout", c.Shutdown.DrainTimeout, 30 * time.Second},
		{"listeners[0].service", l.Service, ""},
		{"listeners[0].tls_mode", l.TLSMode, TLSOptional},
		{"listeners[0].cert_file", l.CertFile, ""},
		{"listeners[0].key_file", l.KeyFile, ""},
		{"listeners[0].handshake_timeout", l.HandshakeTimeout, 10 * time.Second},
		{"listeners[0].audit_log", l.AuditLog, ""},
		{"listeners[0].postgres.admin_password", p.AdminPassword, ""},
		{"listeners[0].postgres.admin_database", p.AdminDatabase, "postgres"},
		{"listeners[0].postgres.user_prefix", p.UserPrefix, "wp_"},
		{"listeners[0].postgres.user_ttl", p.UserTTL, 24 * time.Hour},
		{"listeners[0].postgres.cleanup_interval", p.CleanupInterval, 5 * time.Minute},
		{"listeners[0].postgres.allow_raw_sql", p.AllowRawSQL == nil, true},
		{"listeners[0].postgres.backend_tls", p.BackendTLS, BackendTLSPrefer},
		{"listeners[0].postgres.backend_ca_file", p.BackendCAFile, ""},
		{"listeners[0].postgres.backend_auth", p.BackendAuth, []string{"scram-sha-256", "md5"}},
		{"listeners[0].postgres.spare_backends", p.SpareBackends, 0},
		{"listeners[0].postgres.max_spare_backends", p.MaxSpareBackends, 32},
		{"listeners[0].postgres.spare_idle_timeout", p.SpareIdleTimeout, time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
	if c.Listeners[0].UseTailscaleTLS != true {
		t.Errorf("use_tailscale_tls = false, want the value set in the file")
	}
	c = mustParse(t, strings.Replace(minimal, "use_tailscale_tls = true", `tls_mode = "off"`, 1), nil)
	if c.Listeners[0].UseTailscaleTLS {
		t.Errorf("use_tailscale_tls defaults to true, want false")
	}
}

// full sets every key to a non-default value.
const full = `
[tailscale]
hostname = "waypoint-db"
state_dir = "/srv/ts"
auth_key = "tskey-file"
control_url = "https://headscale.example.com"
ephemeral = true
advertise_tags = ["tag:waypoint", "tag:db"]
capability = "example.com/cap/db"

[provisioning]
allow_raw_sql = true

[revalidation]
interval = "0"

[defaults.limits]
max_conns_per_user = 10
max_conn_duration = "1d12h"
max_bytes_per_conn = "10GB"

[redis]
address = "127.0.0.1:6379"
password = "${REDIS_PASSWORD}"
db = 2
key_prefix = "wp:"

[metrics]
listen = "127.0.0.1:9187"

[console]
listen = ":8080"
local = "127.0.0.1:9188"
local_token_file = "/var/lib/waypoint/console.token"

[shutdown]
drain_timeout = "2m"

[[listeners]]
name = "pg-main"
listen = "100.64.0.1:5432"
mode = "Postgres"
backend = "10.0.1.10:5432"
service = "svc:pg"
tls_mode = "Require"
use_tailscale_tls = false
cert_file = "/etc/waypoint/server.crt"
key_file = "/etc/waypoint/server.key"
handshake_timeout = "5s"
audit_log = "stdout"

[listeners.postgres]
admin_user = "waypoint_admin"
admin_password = "pa$$word"
admin_database = "admin"
user_prefix = "x_"
user_ttl = "7d"
cleanup_interval = "0s"
allow_raw_sql = false
backend_tls = "VERIFY-FULL"
backend_ca_file = "/etc/waypoint/ca.pem"
backend_auth = ["Password", "SCRAM-SHA-256", "password"]
spare_backends = 1
max_spare_backends = 8
spare_idle_timeout = "30s"

[[listeners]]
name = "pg.replica_2"
listen = ":5433"
mode = "postgres"
backend = "[fd00::1]:5432"
tls_mode = "off"
postgres = { admin_user = "ro_admin", backend_tls = "disable", user_ttl = "1h" }
`

func TestParse_AllKeys(t *testing.T) {
	c := mustParse(t, full, map[string]string{"REDIS_PASSWORD": "r$p", "TS_AUTHKEY": "tskey-env"})
	no := false
	want := &Config{
		Tailscale: Tailscale{
			Hostname:      "waypoint-db",
			StateDir:      "/srv/ts",
			AuthKey:       "tskey-file",
			ControlURL:    "https://headscale.example.com",
			Ephemeral:     true,
			AdvertiseTags: []string{"tag:waypoint", "tag:db"},
			Capability:    "example.com/cap/db",
		},
		Provisioning: Provisioning{AllowRawSQL: true},
		Revalidation: Revalidation{Interval: 0},
		Defaults: Defaults{Limits: Limits{
			MaxConnsPerUser: 10,
			MaxConnDuration: 36 * time.Hour,
			MaxBytesPerConn: 10_000_000_000,
		}},
		Redis:    &Redis{Address: "127.0.0.1:6379", Password: "r$p", DB: 2, KeyPrefix: "wp:"},
		Metrics:  &Metrics{Listen: "127.0.0.1:9187"},
		Console:  &Console{Listen: ":8080", Local: "127.0.0.1:9188", LocalTokenFile: "/var/lib/waypoint/console.token"},
		Shutdown: Shutdown{DrainTimeout: 2 * time.Minute},
		Listeners: []Listener{
			{
				Name:             "pg-main",
				Listen:           "100.64.0.1:5432",
				Mode:             ModePostgres,
				Backend:          "10.0.1.10:5432",
				Service:          "svc:pg",
				TLSMode:          TLSRequire,
				CertFile:         "/etc/waypoint/server.crt",
				KeyFile:          "/etc/waypoint/server.key",
				HandshakeTimeout: 5 * time.Second,
				AuditLog:         "stdout",
				Postgres: &Postgres{
					AdminUser:        "waypoint_admin",
					AdminPassword:    "pa$$word",
					AdminDatabase:    "admin",
					UserPrefix:       "x_",
					UserTTL:          7 * 24 * time.Hour,
					CleanupInterval:  0,
					AllowRawSQL:      &no,
					BackendTLS:       BackendTLSVerifyFull,
					BackendCAFile:    "/etc/waypoint/ca.pem",
					BackendAuth:      []string{"password", "scram-sha-256"},
					SpareBackends:    1,
					MaxSpareBackends: 8,
					SpareIdleTimeout: 30 * time.Second,
				},
			},
			{
				Name:             "pg.replica_2",
				Listen:           ":5433",
				Mode:             ModePostgres,
				Backend:          "[fd00::1]:5432",
				TLSMode:          TLSOff,
				HandshakeTimeout: 10 * time.Second,
				Postgres: &Postgres{
					AdminUser:        "ro_admin",
					AdminDatabase:    "postgres",
					UserPrefix:       "wp_",
					UserTTL:          time.Hour,
					CleanupInterval:  5 * time.Minute,
					BackendTLS:       BackendTLSDisable,
					MaxSpareBackends: 32, SpareIdleTimeout: time.Minute,
					BackendAuth: []string{"scram-sha-256", "md5"},
				},
			},
		},
	}
	want.lines = c.lines
	if !reflect.DeepEqual(c, want) {
		t.Errorf("Parse(full):\n got %+v\nwant %+v", c, want)
		for i := range c.Listeners {
			t.Errorf("listeners[%d]:\n got %+v %+v\nwant %+v %+v", i, c.Listeners[i], *c.Listeners[i].Postgres, want.Listeners[i], *want.Listeners[i].Postgres)
		}
	}
}

func TestPostgresAdmin_UserTTLDefault(t *testing.T) {
	c := mustParse(t, minimal, nil)
	if got, want := c.Listeners[0].Postgres.UserTTL, 24*time.Hour; got != want {
		t.Errorf("user_ttl = %v, want %v", got, want)
	}
}

func TestPostgresAdmin_UserTTLCustom(t *testing.T) {
	c := mustParse(t, minimal+`user_ttl = "90m"`+"\n", nil)
	if got, want := c.Listeners[0].Postgres.UserTTL, 90*time.Minute; got != want {
		t.Errorf("user_ttl = %v, want %v", got, want)
	}
}

func TestParse_RevalidationInterval(t *testing.T) {
	for _, tt := range []struct {
		value string
		want  time.Duration
	}{
		{`"0"`, 0}, {`"0s"`, 0}, {`0`, 0}, {`"30s"`, 30 * time.Second}, {`"1d"`, 24 * time.Hour},
	} {
		t.Run(tt.value, func(t *testing.T) {
			c := mustParse(t, minimal+"[revalidation]\ninterval = "+tt.value+"\n", nil)
			if c.Revalidation.Interval != tt.want {
				t.Errorf("interval = %s: got %v, want %v", tt.value, c.Revalidation.Interval, tt.want)
			}
		})
	}
}

func TestParse_DollarIsLiteral(t *testing.T) {
	for _, pw := range []string{"pa$$word", "$5", "$", "a$b", "${not valid}", "${}", "$${", "end$"} {
		t.Run(pw, func(t *testing.T) {
			c := mustParse(t, minimal+"admin_password = '"+pw+"'\n", nil)
			if got := c.Listeners[0].Postgres.AdminPassword; got != pw {
				t.Errorf("admin_password = %q, want %q", got, pw)
			}
		})
	}
}

func TestParse_EnvExpansion(t *testing.T) {
	env := map[string]string{
		"PW":   `x" injected = "y`,
		"HOST": "db.internal",
		"TAG":  "tag:ci",
		"TTL":  "2h",
		"SIZE": "1GiB",
	}
	src := `
[tailscale]
hostname = "wp"
advertise_tags = ["${TAG}"]
[defaults.limits]
max_bytes_per_conn = "${SIZE}"
[[listeners]]
name = "pg"
listen = ":5432"
mode = "postgres"
backend = "${HOST}:5432"
tls_mode = "off"
[listeners.postgres]
admin_user = "admin"
admin_password = "${PW}"
user_ttl = "${TTL}"
`
	c := mustParse(t, src, env)
	tests := []struct {
		name      string
		got, want any
	}{
		{"expanded value is not TOML", c.Listeners[0].Postgres.AdminPassword, env["PW"]},
		{"part of a string", c.Listeners[0].Backend, "db.internal:5432"},
		{"array element", c.Tailscale.AdvertiseTags, []string{"tag:ci"}},
		{"duration", c.Listeners[0].Postgres.UserTTL, 2 * time.Hour},
		{"byte size", c.Defaults.Limits.MaxBytesPerConn, int64(1 << 30)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !reflect.DeepEqual(tt.got, tt.want) {
				t.Errorf("got %#v, want %#v", tt.got, tt.want)
			}
		})
	}
}

func TestParse_TSAuthKey(t *testing.T) {
	tests := []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"from the environment", "", map[string]string{"TS_AUTHKEY": "tskey-env"}, "tskey-env"},
		{"file wins", `auth_key = "tskey-file"`, map[string]string{"TS_AUTHKEY": "tskey-env"}, "tskey-file"},
		{"file via variable", `auth_key = "${KEY}"`, map[string]string{"KEY": "tskey-var", "TS_AUTHKEY": "tskey-env"}, "tskey-var"},
		{"empty in file", `auth_key = ""`, map[string]string{"TS_AUTHKEY": "tskey-env"}, "tskey-env"},
		{"neither", "", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := strings.Replace(minimal, `hostname = "wp"`, `hostname = "wp"`+"\n"+tt.file, 1)
			c := mustParse(t, src, tt.env)
			if c.Tailscale.AuthKey != tt.want {
				t.Errorf("auth key = %q, want %q", c.Tailscale.AuthKey, tt.want)
			}
		})
	}
}

func TestParse_InlineListeners(t *testing.T) {
	src := `
tailscale = { hostname = "wp" }
listeners = [
  { name = "a", listen = ":1", mode = "postgres", backend = "db:5432", tls_mode = "off", postgres = { admin_user = "u" } },
  { name = "b", listen = ":2", mode = "postgres", backend = "db:5432", tls_mode = "off", postgres = { bogus = 1 } },
]
`
	_, err := Parse([]byte(src), nil)
	errs := asErrors(t, err)
	assertHas(t, errs, "listeners[1].postgres.bogus", 5, "unknown key")
	assertHas(t, errs, "listeners[1].postgres.admin_user", 5, "required")
	if len(errs.List) != 2 {
		t.Errorf("got %d errors, want 2:\n%v", len(errs.List), err)
	}
}

// A UTF-8 byte-order mark, which some editors write, is not part of the
// document: the file parses, and its lines count from the first as before.
func TestParse_ByteOrderMark(t *testing.T) {
	c := mustParse(t, "\ufeff"+minimal, nil)
	if c.Tailscale.Hostname != "wp" {
		t.Errorf("hostname = %q, want wp", c.Tailscale.Hostname)
	}
	_, err := Parse([]byte("\ufeff[tailscale]\nhostname = 5\n"), nil)
	assertHas(t, asErrors(t, err), "tailscale.hostname", 2, "must be a string, not an integer")
}

func TestEffectiveAllowRawSQL(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name     string
		l        Listener
		global   bool
		expected bool
	}{
		{"inherit off", Listener{Postgres: &Postgres{}}, false, false},
		{"inherit on", Listener{Postgres: &Postgres{}}, true, true},
		{"override on", Listener{Postgres: &Postgres{AllowRawSQL: &yes}}, false, true},
		{"override off", Listener{Postgres: &Postgres{AllowRawSQL: &no}}, true, false},
		{"no postgres table", Listener{}, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.l.EffectiveAllowRawSQL(tt.global); got != tt.expected {
				t.Errorf("EffectiveAllowRawSQL(%v) = %v, want %v", tt.global, got, tt.expected)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	data, err := os.ReadFile("testdata/spec-example.toml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := Parse(data, envMap(map[string]string{"PG_ADMIN_PASSWORD": "secret"}))
	if err != nil {
		t.Fatal(err)
	}
	got := c.Summary()
	want := []string{"pg-main  postgres  listen :5432 → backend 10.0.1.10:5432  tls=optional(tailscale)  admin=waypoint_admin@postgres  prefix=wp_ ttl=24h0m0s"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Summary() =\n%q\nwant\n%q", got, want)
	}

	c = mustParse(t, full, map[string]string{"REDIS_PASSWORD": "hunter2"})
	got = c.Summary()
	want = []string{
		"pg-main  postgres  listen 100.64.0.1:5432 → backend 10.0.1.10:5432  tls=require(cert)  admin=waypoint_admin@admin  prefix=x_ ttl=168h0m0s  backend_tls=verify-full  backend_auth=password,scram-sha-256  service=svc:pg",
		"pg.replica_2  postgres  listen :5433 → backend [fd00::1]:5432  tls=off  admin=ro_admin@postgres  prefix=wp_ ttl=1h0m0s  backend_tls=disable  raw_sql=on",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Summary() =\n%q\nwant\n%q", got, want)
	}
	for _, line := range got {
		if strings.Contains(line, "pa$$word") || strings.Contains(line, "hunter2") {
			t.Errorf("summary line %q contains a password", line)
		}
	}
}

func TestLoad(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.toml")
	if err := os.WriteFile(good, []byte(minimal), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Load(good)
	if err != nil {
		t.Fatalf("Load(%s): %v", good, err)
	}
	if c.Tailscale.Hostname != "wp" {
		t.Errorf("hostname = %q, want %q", c.Tailscale.Hostname, "wp")
	}

	bad := filepath.Join(dir, "waypoint.toml")
	if err := os.WriteFile(bad, []byte("[tailscale]\nhostname = 1\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = Load(bad)
	want := bad + ":2: tailscale.hostname: must be a string, not an integer\n" +
		bad + ": listeners: at least one [[listeners]] table is required"
	if err == nil || err.Error() != want {
		t.Errorf("Load(bad) error:\n%v\nwant:\n%s", err, want)
	}

	if _, err := Load(filepath.Join(dir, "missing.toml")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) error %v, want one wrapping os.ErrNotExist", err)
	}
}

func TestErrors_As(t *testing.T) {
	_, err := Parse([]byte("[tailscale]\nhostnme = 1\n"), nil)
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("errors.As(%T, *Errors) = false", err)
	}
	var first *Error
	if !errors.As(err, &first) {
		t.Fatalf("errors.As(%T, *Error) = false", err)
	}
	if first != errs.List[0] {
		t.Errorf("errors.As gave %v, want the first error %v", first, errs.List[0])
	}
	if got, want := first.Error(), "line 1: tailscale.hostname: required: the node's name in the tailnet"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestValidate_BuiltInCode(t *testing.T) {
	c := &Config{
		Tailscale:    Tailscale{Hostname: "wp", StateDir: "/tmp/ts", Capability: DefaultCapability},
		Revalidation: Revalidation{Interval: time.Minute},
		Listeners: []Listener{{
			Name: "pg", Listen: ":5432", Mode: ModePostgres, Backend: "db:5432", TLSMode: TLSOff,
			HandshakeTimeout: time.Second,
			Postgres: &Postgres{
				AdminUser: "admin", AdminDatabase: "postgres", UserPrefix: "wp_",
				UserTTL: time.Hour, BackendTLS: BackendTLSPrefer, MaxSpareBackends: 32, SpareIdleTimeout: time.Minute,
				BackendAuth: DefaultBackendAuth(),
			},
		}},
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	tests := []struct {
		name   string
		change func(p *Postgres)
		want   string
	}{
		{"zero user_ttl", func(p *Postgres) { p.UserTTL = 0 }, "config: listeners[0].postgres.user_ttl: must be positive"},
		{"no backend_auth", func(p *Postgres) { p.BackendAuth = nil }, "config: listeners[0].postgres.backend_auth: must list at least one of scram-sha-256, md5, password"},
		{"backend_auth not normalised", func(p *Postgres) { p.BackendAuth = []string{"MD5"} }, `config: listeners[0].postgres.backend_auth: each method must be one of scram-sha-256, md5, password, not "MD5"`},
		{"backend_auth duplicate", func(p *Postgres) { p.BackendAuth = []string{"md5", "md5"} }, `config: listeners[0].postgres.backend_auth: lists "md5" twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := *c.Listeners[0].Postgres
			tt.change(&p)
			cc := *c
			cc.Listeners = []Listener{c.Listeners[0]}
			cc.Listeners[0].Postgres = &p
			if err := cc.Validate(); err == nil || err.Error() != tt.want {
				t.Errorf("got %v, want %s", err, tt.want)
			}
		})
	}
}

func TestParse_BackendAuth(t *testing.T) {
	tests := []struct {
		value string
		want  []string
	}{
		{`["scram-sha-256"]`, []string{"scram-sha-256"}},
		{`["MD5"]`, []string{"md5"}},
		{`["password", "Scram-SHA-256", "PASSWORD", "md5"]`, []string{"password", "scram-sha-256", "md5"}},
		{`["${METHOD}"]`, []string{"password"}},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			c := mustParse(t, minimal+"backend_auth = "+tt.value+"\n", map[string]string{"METHOD": "Password"})
			if got := c.Listeners[0].Postgres.BackendAuth; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("backend_auth = %s: got %q, want %q", tt.value, got, tt.want)
			}
		})
	}
}
