// Package drivers runs real PostgreSQL drivers — psycopg 3, asyncpg,
// node-postgres, postgres.js and pgJDBC — through Waypoint on an in-process
// tailnet, one script per driver (testdata/), each trying the same list of
// features and printing one JSON line per feature. TestDriverMatrix collects
// the lines into a table and fails on any result its expectations do not
// list. It has only tests.
//
// A driver that is not installed skips its column locally and fails the test
// under CI=true. scripts/install-drivers.sh installs them all.
package drivers

import (
	"bytes"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// scriptTimeout bounds one driver's whole script. A script that hangs (a
// cancel that never arrives, a TLS handshake nobody answers) is killed.
const scriptTimeout = 10 * time.Minute

// feature is one row of the matrix. Every script reports every ID.
type feature struct{ ID, Label string }

// features are the rows, in order. Each script's header comment says how
// that driver does each one.
var features = []feature{
	{"simple", "simple query protocol (two statements in one query)"},
	{"extended_text", "extended query, text parameters"},
	{"extended_binary", "extended query, binary parameters and results"},
	{"tx_rollback", "transaction rollback"},
	{"error_continue", "an error, then more queries on the same connection"},
	{"result_10mb", "a 10 MB result (10240 rows × 1 KiB)"},
	{"copy_in", "COPY … FROM STDIN (10000 rows)"},
	{"copy_out", "COPY … TO STDOUT (10000 rows)"},
	{"listen_notify", "LISTEN/NOTIFY: own and another session's notifications arrive"},
	{"notify_self_filter", "NOTIFY self-filtering: own notification's pid = the driver's backend pid"},
	{"backend_pid", "the driver's backend pid = `SELECT pg_backend_pid()`"},
	{"cancel", "cancel a running `pg_sleep(30)`, then reuse the connection"},
	{"application_name", "application_name, as pg_stat_activity shows it"},
	{"parameter_status", "ParameterStatus: server_version, client_encoding, then a `SET application_name`"},
	{"preset_readonly", "preset downgrade (`waypoint_presets=readonly`, the driver's way): INSERT fails with 42501"},
	{"tls_off_prefer", "sslmode=prefer, listener tls_mode off: connects without TLS"},
	{"tls_off_require", "sslmode=require, listener tls_mode off: fails cleanly"},
	{"tls_on_prefer", "sslmode=prefer, listener tls_mode optional: connects with TLS"},
	{"tls_on_require", "sslmode=require, listener tls_mode optional: connects with TLS"},
}

// cell is one driver's feature.
type cell struct{ driver, feature string }

// kind is what an expectation says about a cell.
type kind int

const (
	fails       kind = iota // the feature is tried and fails, for the reason given
	unsupported             // the driver has no way to do it; the script does not try
)

// expectation is a cell that does not simply work, and why.
type expectation struct {
	kind kind
	why  string
}

// Reasons shared by several cells.
const (
	// noPreferFallback is node-postgres's own behaviour, the same against
	// PostgreSQL itself: `node -e` with sslmode=prefer against a pgtest
	// cluster (ssl off) fails the same way, where psql falls back.
	noPreferFallback = "node-postgres has no plaintext fallback: with `uselibpqcompat=true&sslmode=prefer` it gives up " +
		"when the server answers SSLRequest with 'N' (\"The server does not support SSL connections\"), " +
		"against PostgreSQL without TLS just the same"
)

// expectations lists every cell that is not a plain ✓. Any other failure
// fails the test, and so does a listed failure that passes.
var expectations = map[cell]expectation{
	{"node-postgres", "tls_off_prefer"}: {fails, noPreferFallback},

	{"postgres.js", "extended_binary"}:    {unsupported, "postgres.js binds every parameter and asks for every result in text format"},
	{"postgres.js", "notify_self_filter"}: {unsupported, "postgres.js hands listeners only the payload, not the sending backend's pid"},
}

// TestDriverMatrix runs every driver's script against Waypoint on each
// installed PostgreSQL version and logs the matrix as a Markdown table.
func TestDriverMatrix(t *testing.T) {
	pgtest.EachVersion(t, pgtest.Options{}, func(t *testing.T, pg *pgtest.Cluster) {
		r := newRig(t, pg)
		cols := make([]column, len(drivers))
		t.Run("driver", func(t *testing.T) {
			for i, d := range drivers {
				cols[i] = column{Driver: d.Name}
				t.Run(d.Name, func(t *testing.T) {
					t.Parallel()
					runDriver(t, d, r, &cols[i])
				})
			}
		})
		t.Logf("driver matrix through Waypoint, PostgreSQL %d:\n\n%s\n%s", pg.Version, markdownTable(cols), detailTable(cols))
	})
}

// runDriver runs d's script against r, checks each cell and fills col. A
// driver that is not installed is skipped (a failure under CI=true).
func runDriver(t *testing.T, d driver, r *rig, col *column) {
	script, err := filepath.Abs(filepath.Join("testdata", d.Script))
	if err != nil {
		t.Fatal(err)
	}
	argv, env, err := d.find(script)
	if err != nil {
		if isMissing(err) && !testkit.InCI() {
			t.Skip(err)
		}
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Env = append(append(os.Environ(), env...), scriptEnv(r)...)
	var stdout bytes.Buffer
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	began := time.Now()
	runErr := cmd.Run()
	t.Logf("%s: %s in %s", d.Name, strings.Join(argv, " "), time.Since(began).Round(time.Millisecond))
	res, err := parseRun(&stdout)
	if err != nil {
		t.Errorf("%s: %v", d.Name, err)
	}
	col.Version = res.Version
	col.Cells = evaluate(d.Name, res, expectations)
	bad := false
	for _, c := range col.Cells {
		if !c.Verdict.ok() {
			bad = true
			t.Error(complaint(d.Name, c))
		}
	}
	if runErr != nil {
		bad = true
		t.Errorf("%s: script: %v", d.Name, runErr)
	}
	if bad {
		t.Logf("%s stderr:\n%s\nstdout noise:\n%s\nWaypoint log:\n%s", d.Name, stderr.String(), strings.Join(res.Noise, "\n"), r.Logs.String())
	}
}

// scriptEnv tells a script where Waypoint is. The user name is arbitrary:
// Waypoint ignores it and asks the tailnet who is calling.
func scriptEnv(r *rig) []string {
	host, port, _ := net.SplitHostPort(r.PlainAddr)
	_, tlsPort, _ := net.SplitHostPort(r.TLSAddr)
	return []string{
		"WP_HOST=" + host,
		"WP_PORT=" + port,
		"WP_TLS_PORT=" + tlsPort,
		"WP_DATABASE=" + database,
		"WP_USER=driver",
	}
}
