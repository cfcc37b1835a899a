package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/tailnet"
	"github.com/waypoint-proxy/waypoint/internal/tunnel"
)

// tunnelJoinTimeout bounds joining the tailnet (registration, first network
// map).
const tunnelJoinTimeout = 2 * time.Minute

func runTunnel(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("tunnel", "Join the tailnet as a node of its own and forward each connection to a local port to a Waypoint listener\n"+
		"on the tailnet, for clients on machines without tailscaled (CI jobs, containers). Waypoint sees the tunnel's\n"+
		"node as the caller: grant access to the auth key's owner or tags. Runs until SIGINT or SIGTERM.", stderr)
	spec := tunnelSpec{}
	fs.StringVar(&spec.AuthKey, "authkey", os.Getenv("TS_AUTHKEY"), "Tailscale auth `key` for the node (default $TS_AUTHKEY)")
	fs.StringVar(&spec.ControlURL, "control-url", "", "coordination server `URL` (default Tailscale's; set for Headscale)")
	fs.StringVar(&spec.Hostname, "hostname", "waypoint-tunnel", "the node's `name` in the tailnet")
	fs.StringVar(&spec.StateDir, "state-dir", "", "tsnet state `directory` (default: a temporary one, removed at exit)")
	fs.StringVar(&spec.Local, "local", "127.0.0.1:5432", "local `address` to listen on")
	fs.StringVar(&spec.Target, "target", "", "Waypoint listener on the tailnet, `host:port` (e.g. waypoint-db:5432); required")
	fs.BoolVar(&spec.Ephemeral, "ephemeral", true, "register as an ephemeral node, removed from the tailnet soon after it stops")
	fs.DurationVar(&spec.DialTimeout, "dial-timeout", tunnel.DefaultDialTimeout, "bound on reaching the target for each connection")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	if spec.Target == "" {
		fmt.Fprintln(stderr, "waypoint tunnel: -target is required, e.g. -target waypoint-db:5432")
		return 2
	}
	logger, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "waypoint tunnel:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := serveTunnel(ctx, spec, logger); err != nil {
		logger.Error("tunnel stopped", "err", err)
		return 1
	}
	return 0
}

// serveTunnel runs a tunnel until ctx is done.
func serveTunnel(ctx context.Context, spec tunnelSpec, logger *slog.Logger) error {
	if spec.StateDir == "" {
		dir, err := os.MkdirTemp("", "waypoint-tunnel-")
		if err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		defer os.RemoveAll(dir)
		spec.StateDir = dir
	}
	t, err := startTunnel(ctx, spec, logger)
	if err != nil {
		return err
	}
	<-ctx.Done()
	logger.Info("stopping tunnel")
	return t.Close()
}

// tunnelSpec describes one client-side tunnel: a tailnet node of its own
// and a local port forwarded through it.
type tunnelSpec struct {
	Hostname   string // node name; required
	StateDir   string // tsnet state; required
	AuthKey    string // "" if the node is already registered in StateDir
	ControlURL string // "" for Tailscale's
	Ephemeral  bool
	Local      string // "127.0.0.1:port"
	Target     string // "waypoint-db:5432"
	// DialTimeout bounds reaching Target per connection; 0 means
	// tunnel.DefaultDialTimeout.
	DialTimeout time.Duration
	// UserLogf receives tsnet's operator messages (e.g. a login URL); nil
	// means they are discarded.
	UserLogf func(format string, args ...any)
}

// runningTunnel is a started tunnel. Close stops it.
type runningTunnel struct {
	node   *tailnet.Node
	local  net.Addr
	cancel context.CancelFunc
	served chan error // Serve's result
}

// startTunnel listens on spec.Local, joins the tailnet as spec.Hostname and
// starts forwarding in the background until Close. ctx bounds only joining.
// On error nothing is left running.
func startTunnel(ctx context.Context, spec tunnelSpec, logger *slog.Logger) (*runningTunnel, error) {
	ln, err := net.Listen("tcp", spec.Local)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", spec.Local, err)
	}
	joinCtx, cancelJoin := context.WithTimeout(ctx, tunnelJoinTimeout)
	defer cancelJoin()
	node, err := tailnet.Start(joinCtx, tailnet.Options{
		Hostname:   spec.Hostname,
		Dir:        spec.StateDir,
		AuthKey:    spec.AuthKey,
		ControlURL: spec.ControlURL,
		Ephemeral:  spec.Ephemeral,
		UserLogf:   spec.UserLogf,
	})
	if err != nil {
		ln.Close()
		return nil, fmt.Errorf("join the tailnet as %q: %w", spec.Hostname, err)
	}
	serveCtx, cancel := context.WithCancel(context.Background())
	t := &runningTunnel{node: node, local: ln.Addr(), cancel: cancel, served: make(chan error, 1)}
	log := logger.With("tunnel", spec.Hostname)
	go func() {
		t.served <- tunnel.Serve(serveCtx, ln, tunnel.Options{
			Target:      spec.Target,
			Dial:        node.Dial,
			DialTimeout: spec.DialTimeout,
			Logger:      log,
		})
	}()
	v4, _ := node.Addrs()
	log.Info("tunnel is up", "local", ln.Addr().String(), "target", spec.Target, "tailnet_ip", v4.String())
	return t, nil
}

// Close stops accepting, closes the tunnel's open connections, waits for
// them and leaves the tailnet. It returns an Accept failure that had stopped
// the tunnel earlier, if any. Call it once.
func (t *runningTunnel) Close() error {
	t.cancel()
	err := <-t.served
	return errors.Join(err, t.node.Close())
}
