// Package demo is `waypoint demo`: a private in-process tailnet, a
// throwaway PostgreSQL, Waypoint itself and two example users, each behind
// a tunnel on a local port, with psql commands to try and a self-check
// that runs them.
package demo

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/config"
	"github.com/waypoint-proxy/waypoint/internal/pgdemo"
	"github.com/waypoint-proxy/waypoint/internal/server"
	"github.com/waypoint-proxy/waypoint/internal/tailnet"
	"github.com/waypoint-proxy/waypoint/internal/tailnet/devnet"
	"github.com/waypoint-proxy/waypoint/internal/tunnelnode"
)

// configTOML is the configuration the demo's Waypoint runs with: an ordinary
// waypoint.toml, whose ${…} values come from the demo, not the environment.
const configTOML = `
[tailscale]
hostname = "waypoint-db"
state_dir = "${STATE_DIR}"
auth_key = "${AUTH_KEY}"
control_url = "${CONTROL_URL}"
ephemeral = true

[revalidation]
interval = "10s"

[shutdown]
drain_timeout = "2s"

[[listeners]]
name = "pg-demo"
listen = ":5432"
mode = "postgres"
backend = "${BACKEND}"
tls_mode = "off"

[listeners.postgres]
admin_user = "waypoint_admin"
admin_password = "${ADMIN_PASSWORD}"
admin_database = "postgres"
user_prefix = "wp_"
user_ttl = "1h"
backend_tls = "disable"
`

// target is the demo listener as the tunnels dial it, by MagicDNS name.
const target = "waypoint-db:5432"

// startTimeout bounds the whole startup.
const startTimeout = 3 * time.Minute

// Options are the demo's settings, `waypoint demo`'s flags.
type Options struct {
	// PortAlice and PortBob are the local ports of the two users' tunnels;
	// 0 picks a free one.
	PortAlice, PortBob int
	// DataDir keeps PostgreSQL's data and the tailnet state; "" means a
	// temporary directory, removed when Run returns.
	DataDir string
	// Check runs the self-check and returns instead of serving.
	Check bool
}

// ErrFailed is Run's error when the demo did not start or a self-check
// failed; Run has already printed why.
var ErrFailed = errors.New("demo: failed")

// Run starts a private in-process tailnet, a throwaway PostgreSQL, Waypoint
// and two users (alice: readwrite, bob: readonly), each on a local port,
// printing to out what it starts, psql commands to try (unless
// opts.Check) and a self-check. With opts.Check it then returns; else it
// serves until ctx is done. Either way it stops and removes everything it
// started before returning. It returns ErrFailed when the demo did not
// start or, with opts.Check, a check failed.
func Run(ctx context.Context, out io.Writer, opts Options) error {
	alice := &user{Name: "alice", Login: "alice@example.com", Machine: "laptop", Preset: "readwrite", Port: opts.PortAlice}
	bob := &user{Name: "bob", Login: "bob@example.com", Machine: "desktop", Preset: "readonly", Port: opts.PortBob}
	d := &instance{out: out, users: []*user{alice, bob}}
	defer d.close()
	fmt.Fprintln(out, "Waypoint demo: a private tailnet, a throwaway PostgreSQL, and two people with different grants.")
	fmt.Fprintln(out)
	if err := d.start(ctx, opts.DataDir); err != nil {
		fmt.Fprintf(out, "\nThe demo could not start: %v\n", err)
		d.printLogHint()
		return ErrFailed
	}
	if !opts.Check {
		d.printTryIt()
	}
	ok := d.selfCheck(ctx)
	if opts.Check {
		if !ok {
			d.printLogHint()
			return ErrFailed
		}
		return nil
	}
	fmt.Fprintf(out, "\nWaypoint's log, one line per connection: %s\n", d.logFile.Name())
	fmt.Fprintln(out, "Serving until Ctrl-C.")
	<-ctx.Done()
	fmt.Fprintln(out, "\nStopping…")
	return nil
}

// user is one example identity: a tailnet node of its own, owned by
// Login, with a grant of Preset on the demo database, exposed on a local
// port.
type user struct {
	Name    string // short name used in the output and as psql user
	Login   string
	Machine string
	Preset  string
	Port    int                // requested local port; 0 picks a free one
	tunnel  *tunnelnode.Tunnel // nil until started
	local   *net.TCPAddr       // where the tunnel listens, once started
}

// grant is the user's capability value, as a tailnet policy grant would
// carry it.
func (u *user) grant() json.RawMessage {
	return json.RawMessage(`{"backends":{"pg-demo":{"pg":{"databases":{"` + pgdemo.Database +
		`":{"permissions":["` + u.Preset + `"]}}}}}}`)
}

// port is the local port the user's tunnel listens on.
func (u *user) port() int { return u.local.Port }

// connString is the libpq keyword/value connection string for the user's
// port, with a per-connection preset request in the libpq options form when
// preset is set. psql and pgx both accept it.
func (u *user) connString(preset string) string {
	s := fmt.Sprintf("host=127.0.0.1 port=%d dbname=%s user=%s sslmode=disable", u.port(), pgdemo.Database, u.Name)
	if preset != "" {
		s += " options='-c waypoint_presets=" + preset + "'"
	}
	return s
}

// instance is everything Run started. close stops it in reverse order.
type instance struct {
	out     io.Writer
	dir     string // working directory: postgres/, tsnet/, waypoint.log
	rmDir   bool   // dir was created by the demo
	logFile *os.File
	logger  *slog.Logger
	pg      *pgdemo.Server
	net     *devnet.Net
	app     *server.App
	users   []*user
}

// start brings every part up, printing a line for each.
func (d *instance) start(ctx context.Context, dataDir string) error {
	began := time.Now()
	ctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	if err := d.openDir(dataDir); err != nil {
		return err
	}
	if err := d.startPostgres(ctx); err != nil {
		return err
	}
	d.step("PostgreSQL %d on %s: database %q, table %q owned by %s (CREATEROLE)", d.pg.Version, d.pg.Addr, pgdemo.Database, pgdemo.Table, pgdemo.AdminUser)
	var err error
	if d.net, err = devnet.Start(ctx, devnet.Options{}); err != nil {
		return err
	}
	d.step("private tailnet: control server, DERP and STUN on 127.0.0.1")
	if err := d.startWaypoint(ctx); err != nil {
		return err
	}
	v4, _ := d.app.Node().Addrs()
	d.step("Waypoint joined the tailnet as waypoint-db (%s); listener pg-demo on :5432", v4)
	for _, u := range d.users {
		if err := d.startUser(ctx, u); err != nil {
			return fmt.Errorf("%s: %w", u.Login, err)
		}
		d.step("%s on %s (grant: %s on %s) → 127.0.0.1:%d", u.Login, u.Machine, u.Preset, pgdemo.Database, u.port())
	}
	fmt.Fprintf(d.out, "Ready in %.1fs.\n", time.Since(began).Seconds())
	return nil
}

// step prints a completed startup step.
func (d *instance) step(format string, args ...any) {
	fmt.Fprintf(d.out, "  ✓ "+format+"\n", args...)
}

// openDir creates the working directory (or uses dataDir) and the log file.
// When running as root the directory must be reachable by the postgres user.
func (d *instance) openDir(dataDir string) error {
	if dataDir == "" {
		dir, err := os.MkdirTemp("", "waypoint-demo-")
		if err != nil {
			return fmt.Errorf("working directory: %w", err)
		}
		d.dir, d.rmDir = dir, true
	} else {
		dir, err := filepath.Abs(dataDir)
		if err != nil {
			return fmt.Errorf("-data-dir: %w", err)
		}
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return fmt.Errorf("-data-dir: %w", err)
		}
		d.dir = dir
	}
	if os.Geteuid() == 0 {
		if err := os.Chmod(d.dir, 0o711); err != nil {
			return fmt.Errorf("working directory: %w", err)
		}
	}
	f, err := os.OpenFile(filepath.Join(d.dir, "waypoint.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return fmt.Errorf("log file: %w", err)
	}
	d.logFile = f
	d.logger = slog.New(slog.NewTextHandler(f, nil))
	return nil
}

// startPostgres starts the demo cluster, installing PostgreSQL first when it
// is missing and this process may (root), else saying how.
func (d *instance) startPostgres(ctx context.Context) error {
	opts := pgdemo.Options{Dir: filepath.Join(d.dir, "postgres")}
	pg, err := pgdemo.Start(ctx, opts)
	if errors.Is(err, pgdemo.ErrNotInstalled) {
		if os.Geteuid() != 0 {
			return fmt.Errorf("PostgreSQL is not installed; install it with:\n\n    sudo %s\n\nand run the demo again", pgdemo.InstallCommand)
		}
		fmt.Fprintf(d.out, "  … PostgreSQL is not installed; installing it now: %s\n", pgdemo.InstallCommand)
		if err := pgdemo.Install(ctx, d.logFile); err != nil {
			return fmt.Errorf("%w (apt-get output: %s)", err, d.logFile.Name())
		}
		pg, err = pgdemo.Start(ctx, opts)
	}
	if err != nil {
		return err
	}
	d.pg = pg
	return nil
}

// startWaypoint starts the app with the demo configuration.
func (d *instance) startWaypoint(ctx context.Context) error {
	stateDir := filepath.Join(d.dir, "tsnet", "waypoint-db")
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	vars := map[string]string{
		"STATE_DIR":      stateDir,
		"AUTH_KEY":       d.net.AuthKey(),
		"CONTROL_URL":    d.net.ControlURL,
		"BACKEND":        d.pg.Addr,
		"ADMIN_PASSWORD": d.pg.AdminPassword,
	}
	cfg, err := config.Parse([]byte(configTOML), func(k string) (string, bool) {
		v, ok := vars[k]
		return v, ok
	})
	if err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	a, err := server.Start(ctx, cfg, d.logger)
	if err != nil {
		return err
	}
	d.app = a
	return nil
}

// startUser starts u's tunnel node, gives it u's identity and grant, and
// waits until Waypoint's node sees both.
func (d *instance) startUser(ctx context.Context, u *user) error {
	stateDir := filepath.Join(d.dir, "tsnet", u.Machine)
	if err := os.MkdirAll(stateDir, 0o700); err != nil {
		return fmt.Errorf("state directory: %w", err)
	}
	t, err := tunnelnode.Start(ctx, tunnelnode.Spec{
		Hostname:   u.Machine,
		StateDir:   stateDir,
		AuthKey:    d.net.AuthKey(),
		ControlURL: d.net.ControlURL,
		Ephemeral:  true,
		Local:      net.JoinHostPort("127.0.0.1", strconv.Itoa(u.Port)),
		Target:     target,
	}, d.logger)
	if err != nil {
		if u.Port != 0 {
			err = fmt.Errorf("%w (choose another port with -port-%s)", err, u.Name)
		}
		return err
	}
	u.tunnel, u.local = t, t.Local().(*net.TCPAddr)
	v4, _ := t.Node().Addrs()
	if err := d.net.SetIdentity(v4, u.Login); err != nil {
		return err
	}
	if err := d.net.SetGrant(v4, tailnet.DefaultCapability, u.grant()); err != nil {
		return err
	}
	return WaitForPeer(ctx, d.app.Node(), v4, u.Login)
}

// WaitForPeer polls node's WhoIs of addr until it reports login with a
// grant, so that the first connection is already identified correctly. It
// fails when ctx is done first.
func WaitForPeer(ctx context.Context, node *tailnet.Node, addr netip.Addr, login string) error {
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		p, err := node.WhoIs(ctx, addr.String())
		if err == nil && p.LoginName == login && len(p.Caps) > 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("Waypoint did not see %s at %s in time (last: %q, %v)", login, addr, p.LoginName, err)
		case <-tick.C:
		}
	}
}

// printTryIt prints, for each user, a psql command and what to try.
func (d *instance) printTryIt() {
	alice, bob := d.users[0], d.users[1]
	fmt.Fprintf(d.out, `
Try it with psql. Any user name works and no password is asked: Waypoint asks the tailnet
who is calling (the tunnel's node) and logs in to PostgreSQL with a role it provisions.

  alice@example.com (readwrite on demo):
    psql "%[1]s"
      INSERT INTO notes (body) VALUES ('hello from alice');   -- works
      SELECT current_user;                                    -- wp_alice_laptop_demo
      \du                                                     -- the roles Waypoint provisioned

  bob@example.com (readonly on demo):
    psql "%[2]s"
      SELECT * FROM notes;                                    -- works
      INSERT INTO notes (body) VALUES ('hello from bob');     -- ERROR:  %[5]s

  A client may ask for less for one connection (waypoint_presets; psql takes it inside options):
    psql "%[3]s"
      INSERT INTO notes (body) VALUES ('again');              -- ERROR:  %[5]s
                                                              --   (alice is readonly on this connection)
    psql "%[4]s"
      INSERT INTO notes (body) VALUES ('let me in');          -- ERROR:  %[5]s
                                                              --   (bob stays readonly: a request only lowers a grant)
`, alice.connString(""), bob.connString(""), alice.connString("readonly"), bob.connString("readwrite"), denied)
}

// denied is PostgreSQL's message for each INSERT the banner shows
// failing (psql prints it after "ERROR:  "). The self-check requires exactly
// this message, so the banner quotes what the user will see.
const denied = "permission denied for table " + pgdemo.Table

// printLogHint points at the logs after a failure.
func (d *instance) printLogHint() {
	if d.logFile != nil {
		fmt.Fprintf(d.out, "Waypoint's log: %s\n", d.logFile.Name())
	}
	if d.pg != nil {
		fmt.Fprintf(d.out, "PostgreSQL's log: %s\n", d.pg.LogPath())
	}
	if d.rmDir {
		fmt.Fprintln(d.out, "(both are removed on exit; keep them with -data-dir DIR)")
	}
}

// close stops everything that was started, in reverse order, and removes
// the working directory if the demo created it.
func (d *instance) close() {
	for _, u := range d.users {
		if u.tunnel != nil {
			u.tunnel.Close()
		}
	}
	if d.app != nil {
		d.app.Shutdown(time.Second)
	}
	if d.net != nil {
		d.net.Close()
	}
	var errs []error
	if d.pg != nil {
		errs = append(errs, d.pg.Stop())
	}
	if d.logFile != nil {
		d.logFile.Close()
	}
	if d.rmDir {
		errs = append(errs, os.RemoveAll(d.dir))
	}
	if err := errors.Join(errs...); err != nil {
		fmt.Fprintf(d.out, "Cleaning up: %v\n", err)
		return
	}
	if d.rmDir {
		fmt.Fprintf(d.out, "Stopped PostgreSQL and removed %s.\n", d.dir)
	} else if d.pg != nil {
		fmt.Fprintf(d.out, "Stopped PostgreSQL; its data and the tailnet state stay in %s.\n", d.dir)
	}
}
