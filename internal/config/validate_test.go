package config

import (
	"errors"
	"strings"
	"testing"
)

// The refusal cases mark the line the error must point at with "#<-".
const marker = "#<-"

// markedLine returns the 1-based line of src holding the marker, or 0.
func markedLine(src string) int {
	for i, line := range strings.Split(src, "\n") {
		if strings.Contains(line, marker) {
			return i + 1
		}
	}
	return 0
}

const okTailscale = "[tailscale]\nhostname = \"wp\"\n"

// mark appends the marker to the first line of src containing old.
func mark(src, old string) string {
	i := strings.Index(src, old)
	if i < 0 {
		panic("mark: " + old + " not in source")
	}
	end := i + strings.IndexByte(src[i:], '\n')
	return src[:end] + " " + marker + src[end:]
}

// listener returns a valid [[listeners]] table named name on listen, with
// extra lines added to the listener table and to its postgres table.
func listener(name, listen, extra, pgExtra string) string {
	return `
[[listeners]]
name = "` + name + `"
listen = "` + listen + `"
mode = "postgres"
backend = "db:5432"
use_tailscale_tls = true
` + extra + `
[listeners.postgres] ` + pgMarker(pgExtra) + `
admin_user = "admin"
` + pgExtra + "\n"
}

// pgMarker moves a "#<-" written as "#<-table" in pgExtra onto the
// [listeners.postgres] header, for errors about a missing key.
func pgMarker(pgExtra string) string {
	if strings.Contains(pgExtra, marker+"table") {
		return marker
	}
	return ""
}

func asErrors(t *testing.T, err error) *Errors {
	t.Helper()
	var errs *Errors
	if !errors.As(err, &errs) {
		t.Fatalf("error %v (%T), want an *Errors", err, err)
	}
	return errs
}

// assertHas fails unless errs holds an error for key on line with a message
// containing msg.
func assertHas(t *testing.T, errs *Errors, key string, line int, msg string) {
	t.Helper()
	for _, e := range errs.List {
		if e.Key != key {
			continue
		}
		if e.Line != line || !strings.Contains(e.Msg, msg) {
			t.Errorf("got %q, want line %d and a message containing %q", e, line, msg)
		}
		return
	}
	t.Errorf("no error for key %q; got:\n%v", key, errs)
}

func TestParse_Refusals(t *testing.T) {
	ok1 := listener("pg", ":5432", "", "")
	tests := []struct {
		name, src, key, msg string
	}{
		{"syntax error", okTailscale + "[listeners #<-\n", "", "syntax error: expected ']' to close table name"},
		{"syntax error in value", okTailscale + "x = \"unterminated #<-\n", "", "syntax error"},
		{"duplicate key", okTailscale + "hostname = \"again\" #<-\n" + ok1, "", "syntax error: key hostname is already defined"},
		{"table defined twice", okTailscale + ok1 + "[tailscale] #<-\n", "", "syntax error: table tailscale already exists"},
		{"table reopened after dotted keys", "tailscale.hostname = \"wp\"\n[tailscale] #<-\n" + ok1, "", "syntax error: table tailscale already exists as defined by a dotted key"},
		{"array of tables after an array", "listeners = []\n" + okTailscale + "[[listeners]] #<-\n", "", "syntax error: key listeners already exists as a value"},
		{"invalid escape", okTailscale + "state_dir = \"C:\\q\" #<-\n" + ok1, "", "syntax error: invalid escape"},
		{"wrong type offset date-time", okTailscale + "control_url = 1979-05-27T07:32:00Z #<-\n" + ok1, "tailscale.control_url", "must be a string, not a date/time"},
		{"wrong type local date", okTailscale + "control_url = 1979-05-27 #<-\n" + ok1, "tailscale.control_url", "must be a string, not a date/time"},
		{"wrong type local time", okTailscale + "control_url = 07:32:00 #<-\n" + ok1, "tailscale.control_url", "must be a string, not a date/time"},
		{"wrong type local date-time", okTailscale + ok1 + "[revalidation]\ninterval = 1979-05-27T07:32:00 #<-\n", "revalidation.interval", "must be a duration string such as \"90s\", not a date/time"},
		{"unknown top-level key", "bogus = 1 #<-\n" + okTailscale + ok1, "bogus", "unknown key"},
		{"unknown table", okTailscale + ok1 + "[bogus] #<-\nx = 1\n", "bogus", "unknown key"},
		{"unknown key in tailscale", okTailscale + "Hostname = \"x\" #<-\n" + ok1, "tailscale.Hostname", "unknown key"},
		{"unknown key in second listener's postgres", okTailscale + ok1 + listener("b", ":1", "", "admin_usr = \"x\" #<-"), "listeners[1].postgres.admin_usr", "unknown key"},
		{"unknown key in first of two listeners", okTailscale + listener("a", ":1", "nmae = \"x\" #<-", "") + listener("b", ":2", "", ""), "listeners[0].nmae", "unknown key"},
		{"unknown key in limits", okTailscale + ok1 + "[defaults.limits]\nmax_conns = 1 #<-\n", "defaults.limits.max_conns", "unknown key"},
		{"wrong type hostname", "[tailscale]\nhostname = 5 #<-\n" + ok1, "tailscale.hostname", "must be a string, not an integer"},
		{"wrong type bool in second listener", okTailscale + ok1 + strings.Replace(listener("b", ":1", "", ""), "use_tailscale_tls = true", "use_tailscale_tls = \"yes\" #<-", 1), "listeners[1].use_tailscale_tls", "must be true or false, not a string"},
		{"wrong type listeners", "listeners = \"pg\" #<-\n" + okTailscale, "listeners", "must be an array of tables"},
		{"wrong type table", "tailscale = \"wp\" #<-\n" + ok1, "tailscale", "must be a table"},
		{"wrong type duration", okTailscale + ok1 + "[revalidation]\ninterval = true #<-\n", "revalidation.interval", "must be a duration"},
		{"duration as number", okTailscale + ok1 + "[revalidation]\ninterval = 60 #<-\n", "revalidation.interval", "only 0 may be written as a number"},
		{"wrong type size", okTailscale + ok1 + "[defaults.limits]\nmax_bytes_per_conn = 1.5 #<-\n", "defaults.limits.max_bytes_per_conn", "not a float"},
		{"wrong type array element", "[tailscale]\nhostname = \"wp\"\nadvertise_tags = [\n  \"tag:a\",\n  1, #<-\n]\n" + ok1, "tailscale.advertise_tags[1]", "must be a string, not an integer"},
		{"wrong type integer", okTailscale + ok1 + "[defaults.limits]\nmax_conns_per_user = \"10\" #<-\n", "defaults.limits.max_conns_per_user", "must be an integer"},
		{"integer out of range", okTailscale + ok1 + "[defaults.limits]\nmax_conns_per_user = 99999999999 #<-\n", "defaults.limits.max_conns_per_user", "out of range"},
		{"listener not a table", "listeners = [1] #<-\n" + okTailscale, "listeners[0]", "must be a table"},
		{"hostname missing", "[tailscale] #<-\nstate_dir = \"/x\"\n" + ok1, "tailscale.hostname", "required"},
		{"tailscale table missing", ok1, "tailscale.hostname", "required"},
		{"hostname empty", "[tailscale]\nhostname = \"\" #<-\n" + ok1, "tailscale.hostname", "required"},
		{"state_dir empty", okTailscale + "state_dir = \"\" #<-\n" + ok1, "tailscale.state_dir", "must not be empty"},
		{"capability empty", okTailscale + "capability = \"\" #<-\n" + ok1, "tailscale.capability", "must not be empty"},
		{"control_url not http", okTailscale + "control_url = \"ftp://x\" #<-\n" + ok1, "tailscale.control_url", "http"},
		{"advertise_tags without tag:", okTailscale + "advertise_tags = [\"waypoint\"] #<-\n" + ok1, "tailscale.advertise_tags[0]", "not an ACL tag"},
		{"no listeners", okTailscale, "listeners", "at least one"},
		{"listener name missing", okTailscale + mark(strings.Replace(ok1, "name = \"pg\"", "", 1), "[[listeners]]"), "listeners[0].name", "required"},
		{"listener name bad", okTailscale + mark(listener("pg main", ":5432", "", ""), "name ="), "listeners[0].name", "must match"},
		{"listener name duplicate", okTailscale + ok1 + strings.Replace(listener("pg", ":1", "", ""), `name = "pg"`, `name = "pg" #<-`, 1), "listeners[1].name", `duplicate listener name "pg" (also listeners[0])`},
		{"listen duplicate", okTailscale + ok1 + mark(listener("b", "0.0.0.0:5432", "", ""), "listen ="), "listeners[1].listen", "already used by listeners[0]"},
		{"listen missing", okTailscale + mark(strings.Replace(ok1, `listen = ":5432"`, "", 1), "[[listeners]]"), "listeners[0].listen", "required"},
		{"listen without port", okTailscale + strings.Replace(ok1, `listen = ":5432"`, `listen = "5432" #<-`, 1), "listeners[0].listen", "not a \"host:port\""},
		{"listen bad port", okTailscale + strings.Replace(ok1, `listen = ":5432"`, `listen = ":postgres" #<-`, 1), "listeners[0].listen", "port must be a number"},
		{"listen port too big", okTailscale + strings.Replace(ok1, `listen = ":5432"`, `listen = ":65536" #<-`, 1), "listeners[0].listen", "port must be a number"},
		{"backend missing", okTailscale + mark(strings.Replace(ok1, `backend = "db:5432"`, "", 1), "[[listeners]]"), "listeners[0].backend", "required"},
		{"backend not host:port", okTailscale + strings.Replace(ok1, `backend = "db:5432"`, `backend = "db" #<-`, 1), "listeners[0].backend", "not a \"host:port\""},
		{"backend without host", okTailscale + strings.Replace(ok1, `backend = "db:5432"`, `backend = ":5432" #<-`, 1), "listeners[0].backend", "host is missing"},
		{"backend port 0", okTailscale + strings.Replace(ok1, `backend = "db:5432"`, `backend = "db:0" #<-`, 1), "listeners[0].backend", "must not be 0"},
		{"mode other", okTailscale + strings.Replace(ok1, `mode = "postgres"`, `mode = "mysql" #<-`, 1), "listeners[0].mode", `must be one of postgres, not "mysql"`},
		{"mode missing", okTailscale + mark(strings.Replace(ok1, `mode = "postgres"`, "", 1), "[[listeners]]"), "listeners[0].mode", "required"},
		{"postgres table missing", okTailscale + "[[listeners]] #<-\nname = \"pg\"\nlisten = \":5432\"\nmode = \"postgres\"\nbackend = \"db:5432\"\ntls_mode = \"off\"\n", "listeners[0]", "needs a [listeners.postgres] table"},
		{"admin_user missing in second listener", okTailscale + ok1 + strings.Replace(listener("b", ":1", "", "#<-table"), `admin_user = "admin"`, "", 1), "listeners[1].postgres.admin_user", "required"},
		{"admin_user empty", okTailscale + strings.Replace(listener("pg", ":1", "", ""), `admin_user = "admin"`, `admin_user = "" #<-`, 1), "listeners[0].postgres.admin_user", "required"},
		{"admin_database empty", okTailscale + listener("pg", ":1", "", "admin_database = \"\" #<-"), "listeners[0].postgres.admin_database", "must not be empty"},
		{"user_prefix upper case", okTailscale + listener("pg", ":1", "", "user_prefix = \"WP_\" #<-"), "listeners[0].postgres.user_prefix", "must match"},
		{"user_prefix leading digit", okTailscale + listener("pg", ":1", "", "user_prefix = \"1wp\" #<-"), "listeners[0].postgres.user_prefix", "must match"},
		{"user_prefix empty", okTailscale + listener("pg", ":1", "", "user_prefix = \"\" #<-"), "listeners[0].postgres.user_prefix", "must match"},
		{"user_prefix too long", okTailscale + listener("pg", ":1", "", "user_prefix = \"abcdefghij0123456789x\" #<-"), "listeners[0].postgres.user_prefix", "longer than 20 bytes"},
		{"cert_file without key_file", okTailscale + listener("pg", ":1", "cert_file = \"/c.pem\" #<-", ""), "listeners[0].cert_file", "needs key_file"},
		{"key_file without cert_file", okTailscale + listener("pg", ":1", "key_file = \"/k.pem\" #<-", ""), "listeners[0].key_file", "needs cert_file"},
		{"tls require without certificate", okTailscale + strings.Replace(ok1, "use_tailscale_tls = true", `tls_mode = "require" #<-`, 1), "listeners[0].tls_mode", `"require" needs a certificate`},
		{"tls optional by default without certificate", okTailscale + strings.Replace(strings.Replace(ok1, "use_tailscale_tls = true", "", 1), "[[listeners]]", "[[listeners]] #<-", 1), "listeners[0].tls_mode", `"optional" needs a certificate`},
		{"tls_mode bad", okTailscale + listener("pg", ":1", "tls_mode = \"on\" #<-", ""), "listeners[0].tls_mode", `must be one of off, optional, require, not "on"`},
		{"backend_tls bad", okTailscale + listener("pg", ":1", "", "backend_tls = \"verify-ca\" #<-"), "listeners[0].postgres.backend_tls", `must be one of disable, prefer, require, verify-full, not "verify-ca"`},
		{"backend_ca_file with prefer", okTailscale + listener("pg", ":1", "", "backend_ca_file = \"/ca.pem\" #<-"), "listeners[0].postgres.backend_ca_file", `not "prefer"`},
		{"backend_ca_file with disable", okTailscale + listener("pg", ":1", "", "backend_tls = \"disable\"\nbackend_ca_file = \"/ca.pem\" #<-"), "listeners[0].postgres.backend_ca_file", `not "disable"`},
		{"backend_auth unknown method", okTailscale + listener("pg", ":1", "", "backend_auth = [\"scram-sha-256\", \"gss\"] #<-"), "listeners[0].postgres.backend_auth", `each method must be one of scram-sha-256, md5, password, not "gss"`},
		{"backend_auth unknown method, multi-line", okTailscale + listener("pg", ":1", "", "backend_auth = [ #<-\n  \"md5\",\n  \"trust\",\n]"), "listeners[0].postgres.backend_auth", `not "trust"`},
		{"backend_auth empty", okTailscale + listener("pg", ":1", "", "backend_auth = [] #<-"), "listeners[0].postgres.backend_auth", "must list at least one of scram-sha-256, md5, password"},
		{"backend_auth not an array", okTailscale + listener("pg", ":1", "", "backend_auth = \"md5\" #<-"), "listeners[0].postgres.backend_auth", "must be an array of strings, not a string"},
		{"backend_auth element not a string", okTailscale + listener("pg", ":1", "", "backend_auth = [\"md5\", 5] #<-"), "listeners[0].postgres.backend_auth[1]", "must be a string, not an integer"},
		{"backend_auth unset variable", okTailscale + listener("pg", ":1", "", "backend_auth = [\"${UNSET_METHOD}\"] #<-"), "listeners[0].postgres.backend_auth[0]", "UNSET_METHOD is not set"},
		{"negative interval", okTailscale + ok1 + "[revalidation]\ninterval = \"-1m\" #<-\n", "revalidation.interval", "must not be negative"},
		{"negative max_conns_per_user", okTailscale + ok1 + "[defaults.limits]\nmax_conns_per_user = -1 #<-\n", "defaults.limits.max_conns_per_user", "must not be negative"},
		{"negative max_conn_duration", okTailscale + ok1 + "[defaults.limits]\nmax_conn_duration = \"-1h\" #<-\n", "defaults.limits.max_conn_duration", "must not be negative"},
		{"negative max_bytes_per_conn", okTailscale + ok1 + "[defaults.limits]\nmax_bytes_per_conn = -5 #<-\n", "defaults.limits.max_bytes_per_conn", "must not be negative"},
		{"signed byte size", okTailscale + ok1 + "[defaults.limits]\nmax_bytes_per_conn = \"-5MB\" #<-\n", "defaults.limits.max_bytes_per_conn", "invalid byte size"},
		{"bad byte size unit", okTailscale + ok1 + "[defaults.limits]\nmax_bytes_per_conn = \"10XB\" #<-\n", "defaults.limits.max_bytes_per_conn", "unknown unit"},
		{"bad duration", okTailscale + ok1 + "[defaults.limits]\nmax_conn_duration = \"5 minutes\" #<-\n", "defaults.limits.max_conn_duration", "invalid duration"},
		{"negative drain_timeout", okTailscale + ok1 + "[shutdown]\ndrain_timeout = \"-1s\" #<-\n", "shutdown.drain_timeout", "must not be negative"},
		{"negative handshake_timeout", okTailscale + listener("pg", ":1", "handshake_timeout = \"-1s\" #<-", ""), "listeners[0].handshake_timeout", "must be positive"},
		{"zero handshake_timeout", okTailscale + listener("pg", ":1", "handshake_timeout = \"0s\" #<-", ""), "listeners[0].handshake_timeout", "must be positive"},
		{"negative cleanup_interval", okTailscale + listener("pg", ":1", "", "cleanup_interval = \"-5m\" #<-"), "listeners[0].postgres.cleanup_interval", "must not be negative"},
		{"zero user_ttl", okTailscale + listener("pg", ":1", "", "user_ttl = \"0s\" #<-"), "listeners[0].postgres.user_ttl", "must be positive"},
		{"negative user_ttl", okTailscale + listener("pg", ":1", "", "user_ttl = \"-1d\" #<-"), "listeners[0].postgres.user_ttl", "must be positive"},
		{"negative spare_backends", okTailscale + listener("pg", ":1", "", "spare_backends = -1 #<-"), "listeners[0].postgres.spare_backends", "must not be negative"},
		{"zero max_spare_backends", okTailscale + listener("pg", ":1", "", "spare_backends = 1\nmax_spare_backends = 0 #<-"), "listeners[0].postgres.max_spare_backends", "must be at least 1"},
		{"zero spare_idle_timeout", okTailscale + listener("pg", ":1", "", "spare_backends = 1\nspare_idle_timeout = \"0s\" #<-"), "listeners[0].postgres.spare_idle_timeout", "must be positive"},
		{"spare_idle_timeout not shorter than user_ttl", okTailscale + listener("pg", ":1", "", "spare_backends = 1\nuser_ttl = \"1m\"\nspare_idle_timeout = \"1m\" #<-"), "listeners[0].postgres.spare_idle_timeout", "must be shorter than user_ttl (1m0s)"},
		{"service without svc:", "[tailscale]\nhostname = \"wp\"\nadvertise_tags = [\"tag:wp\"]\n" + listener("pg", ":1", "service = \"pg\" #<-", ""), "listeners[0].service", `must start with "svc:"`},
		{"service bad name", "[tailscale]\nhostname = \"wp\"\nadvertise_tags = [\"tag:wp\"]\n" + listener("pg", ":1", "service = \"svc:PG DB\" #<-", ""), "listeners[0].service", "DNS label"},
		{"service without tags", okTailscale + listener("pg", ":1", "service = \"svc:pg\" #<-", ""), "listeners[0].service", "tailscale.advertise_tags"},
		{"service equals hostname", "[tailscale]\nhostname = \"WP\"\nadvertise_tags = [\"tag:wp\"]\n" + listener("pg", ":1", "service = \"svc:wp\" #<-", ""), "listeners[0].service", "must differ from tailscale.hostname"},
		{"redis address missing", okTailscale + ok1 + "[redis] #<-\nkey_prefix = \"x\"\n", "redis.address", "required"},
		{"redis address empty", okTailscale + ok1 + "[redis]\naddress = \"\" #<-\n", "redis.address", "required"},
		{"redis address bad", okTailscale + ok1 + "[redis]\naddress = \"redis\" #<-\n", "redis.address", "host:port"},
		{"redis negative db", okTailscale + ok1 + "[redis]\naddress = \"r:6379\"\ndb = -1 #<-\n", "redis.db", "must not be negative"},
		{"metrics listen missing", okTailscale + ok1 + "[metrics] #<-\n", "metrics.listen", "required"},
		{"metrics listen bad", okTailscale + ok1 + "[metrics]\nlisten = \"9187\" #<-\n", "metrics.listen", "host:port"},
		{"console without a face", okTailscale + ok1 + "[console] #<-\n", "console", "set listen"},
		{"console listen bad", okTailscale + ok1 + "[console]\nlisten = \"8080\" #<-\n", "console.listen", "host:port"},
		{"console on a listener's port", okTailscale + listener("pg", ":5432", "", "") + "[console]\nlisten = \":5432\" #<-\n", "console.listen", "already used by listeners[0]"},
		{"console local not loopback", okTailscale + ok1 + "[console]\nlocal = \"0.0.0.0:9188\" #<-\nlocal_token_file = \"/t\"\n", "console.local", "must be a loopback address"},
		{"console local on a tailnet address", okTailscale + ok1 + "[console]\nlocal = \"100.64.0.1:9188\" #<-\nlocal_token_file = \"/t\"\n", "console.local", "loopback"},
		{"console local without host", okTailscale + ok1 + "[console]\nlocal = \":9188\" #<-\nlocal_token_file = \"/t\"\n", "console.local", "host is missing"},
		{"console local without token file", okTailscale + ok1 + "[console] #<-\nlocal = \"127.0.0.1:9188\"\n", "console.local_token_file", "required with console.local"},
		{"console token file without local", okTailscale + ok1 + "[console]\nlisten = \":8080\"\nlocal_token_file = \"/t\" #<-\n", "console.local_token_file", "needs console.local"},
		{"console unknown key", okTailscale + ok1 + "[console]\nlisten = \":8080\"\nlocal_acces = \"view\" #<-\n", "console.local_acces", "unknown key"},
		{"unset variable", okTailscale + listener("pg", ":1", "", "admin_password = \"${UNSET}\" #<-"), "listeners[0].postgres.admin_password", "environment variable UNSET is not set"},
		{"unset variable in array", "[tailscale]\nhostname = \"wp\"\nadvertise_tags = [\"tag:a\", \"${UNSET_TAG}\"] #<-\n" + ok1, "tailscale.advertise_tags[1]", "UNSET_TAG is not set"},
		{"unset variable in duration", okTailscale + ok1 + "[revalidation]\ninterval = \"${UNSET}\" #<-\n", "revalidation.interval", "UNSET is not set"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Parse([]byte(tt.src), nil)
			if err == nil {
				t.Fatalf("Parse succeeded (%+v), want an error for %s", c, tt.key)
			}
			if c != nil {
				t.Errorf("Parse returned a Config with its error")
			}
			errs := asErrors(t, err)
			assertHas(t, errs, tt.key, markedLine(tt.src), tt.msg)
		})
	}
}

func TestParse_ReportsEveryProblem(t *testing.T) {
	src := `[tailscale]
hostnme = "wp"
[[listeners]]
name = "a"
listen = ":5432"
mode = "postgres"
backend = "db:5432"
tls_mode = "off"
[listeners.postgres]
admin_user = "admin"
user_ttl = "0s"
[[listeners]]
name = "a"
listen = ":5432"
mode = "postgres"
backend = "db"
tls_mode = "maybe"
[listeners.postgres]
`
	_, err := Parse([]byte(src), nil)
	errs := asErrors(t, err)
	want := []string{
		"config:1: tailscale.hostname: required: the node's name in the tailnet",
		"config:2: tailscale.hostnme: unknown key",
		"config:11: listeners[0].postgres.user_ttl: must be positive",
		"config:13: listeners[1].name: duplicate listener name \"a\" (also listeners[0])",
		"config:14: listeners[1].listen: listen address \":5432\" is already used by listeners[0]",
		"config:16: listeners[1].backend: \"db\" is not a \"host:port\" address",
		"config:17: listeners[1].tls_mode: must be one of off, optional, require, not \"maybe\"",
		"config:18: listeners[1].postgres.admin_user: required: the backend role that creates roles",
	}
	if got := strings.Split(errs.Error(), "\n"); strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("got errors:\n%s\nwant:\n%s", errs, strings.Join(want, "\n"))
	}
}

func TestParse_NoCascadingErrors(t *testing.T) {
	// A hostname of the wrong type is reported once, not also as missing.
	_, err := Parse([]byte("[tailscale]\nhostname = 1\n"+listener("pg", ":1", "", "")), nil)
	errs := asErrors(t, err)
	if len(errs.List) != 1 {
		t.Errorf("got %d errors, want 1:\n%v", len(errs.List), errs)
	}
	// A backend_auth whose only element is not a string is reported once,
	// not also as empty.
	_, err = Parse([]byte(okTailscale+listener("pg", ":1", "", "backend_auth = [5]")), nil)
	errs = asErrors(t, err)
	if len(errs.List) != 1 {
		t.Errorf("got %d errors, want 1:\n%v", len(errs.List), errs)
	}
}

func TestParse_EnumsCaseInsensitive(t *testing.T) {
	src := okTailscale + listener("pg", ":1", "mode = \"POSTGRES\"\ntls_mode = \"Require\"", "backend_tls = \"Verify-Full\"")
	src = strings.Replace(src, "mode = \"postgres\"\n", "", 1)
	c := mustParse(t, src, nil)
	l := c.Listeners[0]
	if l.Mode != ModePostgres || l.TLSMode != TLSRequire || l.Postgres.BackendTLS != BackendTLSVerifyFull {
		t.Errorf("got mode %q, tls_mode %q, backend_tls %q; want postgres, require, verify-full", l.Mode, l.TLSMode, l.Postgres.BackendTLS)
	}
}

func TestParse_Accepts(t *testing.T) {
	tests := []struct{ name, src string }{
		{"missing admin_password", okTailscale + listener("pg", ":1", "", "")},
		{"cert files instead of tailscale tls", okTailscale + strings.Replace(listener("pg", ":1", "cert_file = \"/c\"\nkey_file = \"/k\"", ""), "use_tailscale_tls = true", "", 1)},
		{"tls off without certificate", okTailscale + strings.Replace(listener("pg", ":1", "tls_mode = \"off\"", ""), "use_tailscale_tls = true", "", 1)},
		{"backend_auth with cleartext only", okTailscale + listener("pg", ":1", "", "backend_auth = [\"password\"]")},
		{"backend_ca_file with require", okTailscale + listener("pg", ":1", "", "backend_tls = \"require\"\nbackend_ca_file = \"/ca\"")},
		{"two listeners, different ports", okTailscale + listener("a", ":1", "", "") + listener("b", ":2", "", "")},
		{"port 0 twice", okTailscale + listener("a", ":0", "", "") + listener("b", ":0", "", "")},
		{"ipv6 listen", okTailscale + listener("a", "[::]:5432", "", "")},
		{"service on tagged node", "[tailscale]\nhostname = \"wp\"\nadvertise_tags = [\"tag:wp\"]\n" + listener("pg", ":1", "service = \"svc:db\"", "")},
		{"prefix of 20 bytes", okTailscale + listener("pg", ":1", "", "user_prefix = \"abcdefghij0123456789\"")},
		{"zero limits", okTailscale + listener("pg", ":1", "", "") + "[defaults.limits]\nmax_conns_per_user = 0\nmax_conn_duration = \"0s\"\nmax_bytes_per_conn = 0\n"},
		{"empty redis password", okTailscale + listener("pg", ":1", "", "") + "[redis]\naddress = \"r:6379\"\npassword = \"\"\n"},
		{"console on the tailnet only", okTailscale + listener("pg", ":5432", "", "") + "[console]\nlisten = \":8080\"\n"},
		{"console on loopback only", okTailscale + listener("pg", ":5432", "", "") + "[console]\nlocal = \"localhost:9188\"\nlocal_token_file = \"/t\"\n"},
		{"console on ipv6 loopback", okTailscale + listener("pg", ":5432", "", "") + "[console]\nlisten = \":8080\"\nlocal = \"[::1]:9188\"\nlocal_token_file = \"/t\"\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := Parse([]byte(tt.src), nil); err != nil {
				t.Errorf("Parse: %v", err)
			}
		})
	}
}
