package pgdemo

import (
	"errors"
	"fmt"
	"strings"
	"syscall"

	"github.com/waypoint-proxy/waypoint/internal/pgserver"
)

// loopback is the only address the server listens on.
const loopback = "127.0.0.1"

// confFile is the demo's settings file in the data directory, rewritten at
// every start and included from postgresql.conf.
const confFile = "waypoint-demo.conf"

// serverCredential returns the user PostgreSQL must run as (see
// pgserver.Credential), with InstallCommand as the remedy for a missing
// "postgres" user.
func serverCredential() (*syscall.Credential, error) {
	cred, err := pgserver.Credential()
	if errors.Is(err, pgserver.ErrNoSystemUser) {
		return nil, fmt.Errorf("pgdemo: running as root, PostgreSQL must run as the \"postgres\" system user, which does not exist (%w); %s creates it", err, InstallCommand)
	}
	if err != nil {
		return nil, fmt.Errorf("pgdemo: %w", err)
	}
	return cred, nil
}

// initdb creates the data directory with the bootstrap superuser and
// includes the demo's settings file from postgresql.conf.
func initdb(srv *pgserver.Server) error {
	if err := srv.Initdb(superUser); err != nil {
		return fmt.Errorf("pgdemo: %w (the server's user must be able to reach %s)", err, srv.Dir)
	}
	include := fmt.Sprintf("\n# waypoint demo\ninclude_if_exists '%s'\n", confFile)
	if err := srv.AppendDataFile("postgresql.conf", include); err != nil {
		return fmt.Errorf("pgdemo: %w", err)
	}
	return nil
}

// writeConfig writes pg_hba.conf (Unix socket trusted, for the setup as
// superuser; TCP from 127.0.0.1 with SCRAM passwords) and the settings file.
// Both get the owner of the data directory.
func writeConfig(srv *pgserver.Server) error {
	hba := "local all all trust\nhost all all 127.0.0.1/32 scram-sha-256\n"
	conf := fmt.Sprintf("listen_addresses = '%s'\nunix_socket_directories = '%s'\nmax_connections = 100\n"+
		"password_encryption = 'scram-sha-256'\nlogging_collector = off\nlog_line_prefix = '%%m [%%p] %%q%%u@%%d '\n",
		loopback, strings.ReplaceAll(srv.Dir, "'", "''"))
	for name, body := range map[string]string{"pg_hba.conf": hba, confFile: conf} {
		if err := srv.WriteDataFile(name, body); err != nil {
			return fmt.Errorf("pgdemo: %w", err)
		}
	}
	return nil
}
