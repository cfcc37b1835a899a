package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/config"
	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/provision"
	"github.com/waypoint-proxy/waypoint/internal/server"
)

// maxGrantBytes bounds the grant JSON explain reads.
const maxGrantBytes = 1 << 20

// explainFlags are the inputs of `waypoint explain`.
type explainFlags struct {
	config, listener, login, machine, node, tags, database, grant, preset string
}

func runExplain(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("explain", "Show the decision, the role and every SQL statement Waypoint would run for a caller, without touching a database.\n"+
		"Exit status 1 when the caller would be refused.", stderr)
	var f explainFlags
	fs.StringVar(&f.config, "config", "waypoint.toml", "configuration `file`")
	fs.StringVar(&f.listener, "listener", "", "listener `name` (default: the first listener)")
	fs.StringVar(&f.login, "login", "", "the caller's tailnet `login`, e.g. alice@example.com")
	fs.StringVar(&f.machine, "machine", "", "the caller's machine `name`, e.g. laptop")
	fs.StringVar(&f.node, "node", "explain", "the caller's stable node `ID` (recorded on the role)")
	fs.StringVar(&f.tags, "tags", "", "comma-separated ACL `tags` of a tagged caller (instead of -login)")
	fs.StringVar(&f.database, "database", "", "the `database` the client asks for")
	fs.StringVar(&f.grant, "grant", "", "grant JSON `file` (one grant object or an array), or - for stdin")
	fs.StringVar(&f.preset, "preset", "", "simulate the client's per-connection request waypoint_presets=`list`, e.g. readonly")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if err := f.validate(); err != nil {
		fmt.Fprintf(stderr, "waypoint explain: %v\n", err)
		return 2
	}
	return explain(f, os.Stdin, stdout, stderr)
}

func (f explainFlags) validate() error {
	switch {
	case f.login == "" && f.tags == "":
		return errors.New("-login (or -tags) is required")
	case f.machine == "":
		return errors.New("-machine is required")
	case f.database == "":
		return errors.New("-database is required")
	case f.grant == "":
		return errors.New("-grant is required (a file, or - for stdin)")
	}
	return nil
}

// explain runs the decision and provision.Explain and prints them. It
// returns the exit code.
func explain(f explainFlags, stdin io.Reader, stdout, stderr io.Writer) int {
	cfg, err := config.Load(f.config)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	l, err := pickListener(cfg, f.listener)
	if err != nil {
		fmt.Fprintf(stderr, "waypoint explain: %v\n", err)
		return 2
	}
	grant, err := readGrant(f.grant, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "waypoint explain: %v\n", err)
		return 2
	}
	peer := identity.Peer{LoginName: f.login, MachineName: f.machine, NodeID: f.node, Caps: []json.RawMessage{grant}}
	if f.tags != "" {
		peer.LoginName, peer.Tags = identity.TaggedLogin, splitList(f.tags)
	}
	req := authz.Request{Listener: l.Name, Database: f.database}
	if f.preset != "" {
		if req.MaxPreset, _, err = authz.PresetRequest(map[string]string{"waypoint_presets": f.preset}); err != nil {
			fmt.Fprintf(stderr, "waypoint explain: -preset: %v\n", err)
			return 2
		}
	}
	eff, err := authz.Decide(peer, req, server.ListenerPolicy(cfg, l))
	if err != nil {
		fmt.Fprintf(stdout, "decision: DENY\n  %v\n  the client would see: %s\n", err, clientMessage(err))
		return 1
	}
	printDecision(stdout, eff)
	role, stmts, err := provision.Explain(provision.ExplainOptions{Prefix: l.Postgres.UserPrefix}, peer, eff)
	if err != nil {
		fmt.Fprintf(stdout, "provisioning: REFUSED\n  %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "role: %s\n", role)
	fmt.Fprintf(stdout, "statements (as %s, on a connection to database %s; first connection, role and groups not yet created):\n",
		l.Postgres.AdminUser, eff.Database)
	for _, s := range stmts {
		fmt.Fprintf(stdout, "  %s;\n", strings.ReplaceAll(s, "\n", "\n  "))
	}
	return 0
}

// pickListener returns the named postgres listener, or the first listener.
func pickListener(cfg *config.Config, name string) (*config.Listener, error) {
	for i := range cfg.Listeners {
		l := &cfg.Listeners[i]
		if (name == "" || l.Name == name) && l.Postgres != nil {
			return l, nil
		}
		if l.Name == name {
			return nil, fmt.Errorf("listener %q is not a postgres listener", name)
		}
	}
	if name == "" {
		return nil, errors.New("the configuration has no postgres listener")
	}
	return nil, fmt.Errorf("no listener named %q in the configuration", name)
}

// readGrant reads the grant JSON from path ("-" = stdin), at most
// maxGrantBytes, and checks that it is JSON.
func readGrant(path string, stdin io.Reader) (json.RawMessage, error) {
	r := stdin
	if path != "-" {
		f, err := os.Open(path)
		if err != nil {
			return nil, fmt.Errorf("-grant: %w", err)
		}
		defer f.Close()
		r = f
	}
	b, err := io.ReadAll(io.LimitReader(r, maxGrantBytes+1))
	if err != nil {
		return nil, fmt.Errorf("-grant: %w", err)
	}
	if len(b) > maxGrantBytes {
		return nil, fmt.Errorf("-grant: longer than %d bytes", maxGrantBytes)
	}
	if !json.Valid(b) {
		return nil, errors.New("-grant: not valid JSON")
	}
	return json.RawMessage(b), nil
}

func printDecision(w io.Writer, eff authz.Effective) {
	fmt.Fprintf(w, "decision: ALLOW\n  listener: %s\n  database: %s\n  preset:   %s", eff.Listener, eff.Database, eff.Preset)
	if eff.PresetLimited {
		fmt.Fprint(w, " (limited by the connection's request; raw SQL skipped)")
	}
	schemas := make([]string, len(eff.Schemas))
	for i, s := range eff.Schemas {
		schemas[i] = s.Schema + " (" + string(s.Preset) + ")"
	}
	fmt.Fprintf(w, "\n  schemas:  %s\n  raw sql:  %d statement(s)\n", strings.Join(schemas, ", "), len(eff.SQL))
	fmt.Fprintf(w, "  limits:   max_conns=%s max_conn_duration=%s max_bytes_per_conn=%s\n",
		orUnlimited(eff.Limits.MaxConns), orUnlimited(eff.Limits.MaxConnDuration), orUnlimited(eff.Limits.MaxBytesPerConn))
}

func orUnlimited[T comparable](v T) string {
	var zero T
	if v == zero {
		return "unlimited"
	}
	return fmt.Sprint(v)
}

// clientMessage is what the connecting client would be told for err.
func clientMessage(err error) string {
	var d *authz.Denial
	if errors.As(err, &d) {
		return d.ClientMessage()
	}
	return err.Error()
}
