package pgtest

import (
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"

	"github.com/waypoint-proxy/waypoint/internal/pgserver"
)

// setting is one postgresql.conf line.
type setting struct{ name, value string }

var settingNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

// normalize fills in defaults and validates opts.
func (o Options) normalize() (Options, error) {
	switch o.Auth {
	case "":
		o.Auth = AuthSCRAM
	case AuthSCRAM, AuthMD5, AuthPassword:
	default:
		return o, fmt.Errorf("pgtest: unknown Auth %q (want %q, %q or %q)", o.Auth, AuthSCRAM, AuthMD5, AuthPassword)
	}
	if o.Version < 0 {
		return o, fmt.Errorf("pgtest: negative Version %d", o.Version)
	}
	for name, value := range o.Settings {
		if !settingNameRE.MatchString(name) {
			return o, fmt.Errorf("pgtest: invalid setting name %q", name)
		}
		if strings.ContainsAny(value, "\r\n\x00") {
			return o, fmt.Errorf("pgtest: setting %s: value contains a line break or NUL", name)
		}
	}
	return o, nil
}

// settings returns the postgresql.conf settings for opts, pgtest's own first
// and then opts.Settings sorted by name (later lines win).
func settings(opts Options, socketDir string) []setting {
	encryption := "scram-sha-256"
	if opts.Auth == AuthMD5 {
		encryption = "md5"
	}
	list := []setting{
		{"listen_addresses", "127.0.0.1"},
		{"unix_socket_directories", socketDir},
		{"max_connections", "300"},
		{"fsync", "off"},
		{"synchronous_commit", "off"},
		{"full_page_writes", "off"},
		{"logging_collector", "off"},
		{"log_line_prefix", "%m [%p] %q%u@%d "},
		{"password_encryption", encryption},
	}
	if opts.LogStatements {
		list = append(list, setting{"log_statement", "all"})
	}
	for _, name := range slices.Sorted(maps.Keys(opts.Settings)) {
		list = append(list, setting{name, opts.Settings[name]})
	}
	return list
}

// confLine renders a setting as a postgresql.conf line with a quoted value.
func confLine(s setting) string {
	v := strings.ReplaceAll(s.value, `\`, `\\`)
	v = strings.ReplaceAll(v, `'`, `''`)
	return fmt.Sprintf("%s = '%s'\n", s.name, v)
}

// hbaConf returns pg_hba.conf: the Unix socket is trusted (superuser
// helpers), TCP from 127.0.0.1 requires auth.
func hbaConf(auth Auth) string {
	return "local all all trust\nhost all all 127.0.0.1/32 " + string(auth) + "\n"
}

// writeConfig replaces pg_hba.conf and appends pgtest's settings to
// postgresql.conf.
func writeConfig(srv *pgserver.Server, opts Options) error {
	if err := srv.WriteDataFile("pg_hba.conf", hbaConf(opts.Auth)); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	var conf strings.Builder
	conf.WriteString("\n# pgtest\n")
	for _, st := range settings(opts, srv.Dir) {
		conf.WriteString(confLine(st))
	}
	if err := srv.AppendDataFile("postgresql.conf", conf.String()); err != nil {
		return fmt.Errorf("pgtest: %w", err)
	}
	return nil
}
