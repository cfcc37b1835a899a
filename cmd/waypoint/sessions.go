package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/console"
)

// This file holds the console's command-line face: `waypoint sessions` and
// `waypoint terminate`, both clients of the console's JSON API.

// defaultConsoleURL is the loopback face's usual address.
const defaultConsoleURL = "http://127.0.0.1:9188"

// consoleFlags are the flags every console command takes.
type consoleFlags struct {
	url, tokenFile *string
	asJSON         *bool
}

// addConsoleFlags registers -console, -token-file and -json on fs.
func addConsoleFlags(fs *flag.FlagSet) consoleFlags {
	return consoleFlags{
		url: fs.String("console", envOr("WAYPOINT_CONSOLE", defaultConsoleURL),
			"the console's `URL`: http://waypoint-db:8080 on the tailnet, or the loopback face (env WAYPOINT_CONSOLE)"),
		tokenFile: fs.String("token-file", os.Getenv("WAYPOINT_CONSOLE_TOKEN_FILE"),
			"`file` with the loopback face's token (local_token_file; env WAYPOINT_CONSOLE_TOKEN_FILE)"),
		asJSON: fs.Bool("json", false, "print the API's JSON, for scripts"),
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// client builds the API client the flags describe.
func (f consoleFlags) client() (*console.Client, error) {
	c := &console.Client{BaseURL: *f.url}
	if *f.tokenFile != "" {
		b, err := os.ReadFile(*f.tokenFile)
		if err != nil {
			return nil, fmt.Errorf("-token-file: %w", err)
		}
		c.Token = strings.TrimSpace(string(b))
	}
	return c, nil
}

// cliTimeout bounds one console command.
const cliTimeout = 30 * time.Second

// call runs do against the console the flags describe, within cliTimeout.
// It returns the command's exit code: 2 when the flags do not give a
// client (a usage problem), 1 when do fails, 0 otherwise; failures are
// printed to stderr as "waypoint <cmd>: <error>".
func (f consoleFlags) call(stderr io.Writer, cmd string, do func(context.Context, *console.Client) error) int {
	c, err := f.client()
	if err != nil {
		fmt.Fprintf(stderr, "waypoint %s: %v\n", cmd, err)
		return 2
	}
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	if err := do(ctx, c); err != nil {
		fmt.Fprintf(stderr, "waypoint %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

func runSessions(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("sessions", "List the open sessions of every Waypoint instance, through the console's API.", stderr)
	cf := addConsoleFlags(fs)
	listener := fs.String("listener", "", "only sessions on this listener `name`")
	login := fs.String("login", "", "only sessions of this `login` (or tags, e.g. tag:ci)")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	var sessions []console.Session
	var unreachable []string
	if code := cf.call(stderr, "sessions", func(ctx context.Context, c *console.Client) (err error) {
		sessions, unreachable, err = c.Sessions(ctx, console.Filter{Listener: *listener, Login: *login})
		return err
	}); code != 0 {
		return code
	}
	warnUnreachable(stderr, unreachable)
	if *cf.asJSON {
		if sessions == nil {
			sessions = []console.Session{}
		}
		return printJSON(stdout, stderr, struct {
			Sessions    []console.Session `json:"sessions"`
			Unreachable []string          `json:"unreachable,omitempty"`
		}{sessions, unreachable})
	}
	printSessions(stdout, sessions, time.Now())
	return 0
}

// printSessions writes sessions as a table for people.
func printSessions(w io.Writer, sessions []console.Session, now time.Time) {
	if len(sessions) == 0 {
		fmt.Fprintln(w, "no open sessions")
		return
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tLOGIN\tMACHINE\tLISTENER\tDATABASE\tROLE\tPRESET\tSTATE\tAGE\tIN\tOUT\tPID\tCLIENT\tINSTANCE")
	for _, s := range sessions {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n",
			s.ID, dash(s.Login), dash(s.Machine), s.Listener, dash(s.Database), dash(s.Role), dash(s.Preset), s.State,
			now.Sub(s.Started).Round(time.Second), sizeText(s.BytesIn), sizeText(s.BytesOut), pidText(s.BackendPID), s.ClientAddr, s.Instance)
	}
	tw.Flush()
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func pidText(pid uint32) string {
	if pid == 0 {
		return "-"
	}
	return fmt.Sprint(pid)
}

// sizeText formats a byte count like 1.5kB.
func sizeText(n int64) string {
	if n < 1000 {
		return fmt.Sprintf("%dB", n)
	}
	f, units := float64(n), "kMGTPE"
	i := -1
	for f >= 1000 && i < len(units)-1 {
		f /= 1000
		i++
	}
	return fmt.Sprintf("%.1f%cB", f, units[i])
}

func runTerminate(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("terminate", "End one session (by its ID from `waypoint sessions`) or, with -login, every session of an identity.\n"+
		"The client gets FATAL 57P01 saying an operator ended it, and its backend session is terminated.\n\n"+
		"  waypoint terminate [flags] ID\n  waypoint terminate [flags] -login alice@example.com", stderr)
	cf := addConsoleFlags(fs)
	login := fs.String("login", "", "terminate every session of this `login` (or tags)")
	instance := fs.String("instance", "", "the instance `ID` of the session, when several instances have one with this ID")
	id, code := parseWithID(fs, args)
	if code >= 0 {
		return code
	}
	if (id == "") == (*login == "") {
		fmt.Fprintln(stderr, "waypoint terminate: give a session ID or -login, not both")
		return 2
	}
	var res console.Result
	if code := cf.call(stderr, "terminate", func(ctx context.Context, c *console.Client) (err error) {
		if id != "" {
			res, err = c.Terminate(ctx, id, *instance)
		} else {
			res, err = c.TerminateLogin(ctx, *login)
		}
		return err
	}); code != 0 {
		return code
	}
	warnUnreachable(stderr, res.Unreachable)
	if *cf.asJSON {
		return printJSON(stdout, stderr, res)
	}
	return printTerminated(stdout, res, *login)
}

// parseWithID parses flags before and after one optional positional ID
// (the standard flag package stops at the first argument).
func parseWithID(fs *flag.FlagSet, args []string) (id string, code int) {
	if code := parseFlagsOnly(fs, args); code >= 0 {
		return "", code
	}
	if fs.NArg() == 0 {
		return "", -1
	}
	id = fs.Arg(0)
	if code := parseFlags(fs, fs.Args()[1:]); code >= 0 {
		return "", code
	}
	return id, -1
}

// parseFlagsOnly is parseFlags that leaves positional arguments to the
// caller.
func parseFlagsOnly(fs *flag.FlagSet, args []string) int {
	if err := fs.Parse(args); err != nil {
		if err == flag.ErrHelp {
			return 0
		}
		return 2
	}
	return -1
}

// printTerminated says what was ended; exit 1 when nothing was.
func printTerminated(w io.Writer, res console.Result, login string) int {
	if len(res.Sessions) == 0 {
		fmt.Fprintf(w, "no open sessions of %s\n", login)
		return 1
	}
	for _, s := range res.Sessions {
		fmt.Fprintf(w, "terminated %s: %s on %s, %s/%s as %s (instance %s)\n",
			s.ID, dash(s.Login), dash(s.Machine), s.Listener, dash(s.Database), dash(s.Role), s.Instance)
	}
	return 0
}

func warnUnreachable(w io.Writer, ids []string) {
	if len(ids) > 0 {
		fmt.Fprintf(w, "warning: instance(s) %s did not answer; their sessions are not included\n", strings.Join(ids, ", "))
	}
}

func printJSON(stdout, stderr io.Writer, v any) int {
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		fmt.Fprintln(stderr, "waypoint:", err)
		return 1
	}
	return 0
}
