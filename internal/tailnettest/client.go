package tailnettest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"tailscale.com/ipn/store/mem"
	"tailscale.com/tailcfg"
	"tailscale.com/tsnet"

	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

// Client is a client node on the tailnet — a user's laptop, a CI runner —
// that dials the proxy. Its methods are safe for concurrent use.
type Client struct {
	// Login is the login name other nodes see ("alice@example.com"); it is
	// identity.TaggedLogin for a tagged node and "" for a node with no user.
	Login string
	// Machine is the node's host name ("laptop").
	Machine string
	// Tags are the node's ACL tags, sorted; empty for a user's node.
	Tags []string

	srv    *tsnet.Server
	addr   netip.Addr
	nodeID tailcfg.StableNodeID

	closeOnce sync.Once
	closed    atomic.Bool // set by Close
}

// NewClient starts a client node named machine. With no tags, other nodes
// see it owned by login (login "" gives a node with no user, which the proxy
// must refuse); with tags, it is a tagged node (login identity.TaggedLogin)
// and login is ignored. NewClient returns once every StartNode node
// identifies the client this way. The client is closed at tb's cleanup.
func (tn *Tailnet) NewClient(tb testing.TB, login, machine string, tags ...string) *Client {
	tb.Helper()
	c := &Client{
		Login:   login,
		Machine: machine,
		Tags:    slices.Sorted(slices.Values(tags)),
		srv: &tsnet.Server{
			Hostname:   machine,
			Dir:        testkit.StateDir(tb),
			Store:      new(mem.Store),
			Ephemeral:  true,
			AuthKey:    tn.net.AuthKey(),
			ControlURL: tn.ControlURL,
			Logf:       tn.logs.nodeLogf(),
			UserLogf:   func(string, ...any) {},
		},
	}
	if len(c.Tags) > 0 {
		c.Login = identity.TaggedLogin
	}
	tb.Cleanup(func() { c.Close() })
	if err := c.start(); err != nil {
		tb.Fatalf("tailnettest: start client %q: %v", machine, err)
	}
	if err := tn.net.SetIdentity(c.addr, login, c.Tags...); err != nil {
		tb.Fatalf("tailnettest: new client %q: %v", machine, err)
	}
	tn.mu.Lock()
	tn.clients = append(tn.clients, c)
	tn.mu.Unlock()
	if err := tn.sync(); err != nil {
		tb.Fatalf("tailnettest: new client %q: %v", machine, err)
	}
	return c
}

// start brings the client's node up and records its ID and address.
func (c *Client) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	st, err := c.srv.Up(ctx)
	if err != nil {
		return err
	}
	c.nodeID = st.Self.ID
	for _, a := range st.TailscaleIPs {
		if a.Is4() {
			c.addr = a
		}
	}
	if !c.addr.IsValid() {
		return fmt.Errorf("no IPv4 address in %v", st.TailscaleIPs)
	}
	return nil
}

// Dial connects to addr ("100.x.y.z:port") over the tailnet.
func (c *Client) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	return c.srv.Dial(ctx, network, addr)
}

// Addr is the client's tailnet IPv4 address.
func (c *Client) Addr() netip.Addr { return c.addr }

// NodeID is the client's stable node ID, as WhoIs reports it.
func (c *Client) NodeID() string { return string(c.nodeID) }

// closeTimeout bounds how long Close waits for the node to shut down.
const closeTimeout = 10 * time.Second

// Close takes the client off the tailnet. It is idempotent.
//
// It waits at most closeTimeout for the node to shut down, then returns and
// leaves the shutdown running: tsnet (tailscale.com v1.102.5) first stops
// the goroutine that drains a node's 512-packet outbound queue, then aborts
// every TCP endpoint the node still has — TIME_WAIT ones, which last a
// minute, included — queueing one RST each, so a node that closed more than
// that many connections in its last minute never finishes closing. A test
// that makes thousands of connections through one client (pgx's test suite
// in internal/compat) would otherwise hang in its cleanup forever.
func (c *Client) Close() error {
	c.closeOnce.Do(func() {
		c.closed.Store(true)
		done := make(chan struct{})
		go func() {
			defer close(done)
			c.srv.Close()
		}()
		select {
		case <-done:
		case <-time.After(closeTimeout):
		}
	})
	return nil
}

// Dialer returns c.Dial, e.g. for pgconn.Config.DialFunc.
func (tn *Tailnet) Dialer(c *Client) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return c.Dial
}

// SetGrant makes every node see src holding the app capability capability
// with values, each a JSON value (as a grant's "app" section in a tailnet
// policy file would give; they are sent compacted). No values removes the
// grant. Connections stay
// open. SetGrant returns once every StartNode node reports the new values
// for tailnet.DefaultCapability from WhoIs; if that does not happen in time
// the test is marked failed.
func (tn *Tailnet) SetGrant(src *Client, capability string, values ...json.RawMessage) {
	tn.tb.Helper()
	if err := tn.net.SetGrant(src.addr, capability, values...); err != nil {
		tn.tb.Errorf("tailnettest: SetGrant(%s, %q): %v", src.Machine, capability, err)
		return
	}
	if err := tn.sync(); err != nil {
		tn.tb.Errorf("tailnettest: SetGrant(%s, %q): %v", src.Machine, capability, err)
	}
}
