// Package tunnelnode runs a client-side tunnel: a tailnet node of its own
// and a local port whose connections internal/tunnel forwards through that
// node to a Waypoint listener. `waypoint tunnel` and `waypoint demo` use
// it; Waypoint sees the tunnel's node as the caller.
package tunnelnode

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/tailnet"
	"github.com/waypoint-proxy/waypoint/internal/tunnel"
)

// joinTimeout bounds joining the tailnet (registration, first network
// map).
const joinTimeout = 2 * time.Minute

// Spec describes one tunnel: a tailnet node of its own and a local port
// forwarded through it.
type Spec struct {
	Hostname   string // node name; required
	StateDir   string // tsnet state; required by Start, "" in Run means a temporary one
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

// Run runs a tunnel until ctx is done, then stops it. With an empty
// spec.StateDir the node's state lives in a temporary directory, removed
// when Run returns.
func Run(ctx context.Context, spec Spec, logger *slog.Logger) error {
	if spec.StateDir == "" {
		dir, err := os.MkdirTemp("", "waypoint-tunnel-")
		if err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		defer os.RemoveAll(dir)
		spec.StateDir = dir
	}
	t, err := Start(ctx, spec, logger)
	if err != nil {
		return err
	}
	<-ctx.Done()
	logger.Info("stopping tunnel")
	return t.Close()
}

// Tunnel is a started tunnel. Close stops it.
type Tunnel struct {
	node   *tailnet.Node
	local  net.Addr
	cancel context.CancelFunc
	served chan error // Serve's result
}

// Start listens on spec.Local, joins the tailnet as spec.Hostname and
// starts forwarding in the background until Close. ctx bounds only joining.
// On error nothing is left running.
func Start(ctx context.Context, spec Spec, logger *slog.Logger) (*Tunnel, error) {
	ln, err := net.Listen("tcp", spec.Local)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", spec.Local, err)
	}
	joinCtx, cancelJoin := context.WithTimeout(ctx, joinTimeout)
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
	t := &Tunnel{node: node, local: ln.Addr(), cancel: cancel, served: make(chan error, 1)}
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

// Local is the local address the tunnel listens on (spec.Local with the
// port resolved).
func (t *Tunnel) Local() net.Addr { return t.local }

// Node is the tunnel's tailnet node: the caller Waypoint sees.
func (t *Tunnel) Node() *tailnet.Node { return t.node }

// Close stops accepting, closes the tunnel's open connections, waits for
// them and leaves the tailnet. It returns an Accept failure that had stopped
// the tunnel earlier, if any. Call it once.
func (t *Tunnel) Close() error {
	t.cancel()
	err := <-t.served
	return errors.Join(err, t.node.Close())
}
