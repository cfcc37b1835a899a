// Package tailnettest runs a private tailnet inside a test process: a
// devnet (Tailscale's test control server, a DERP and STUN server on
// 127.0.0.1), proxy nodes (tailnet.Node) and client nodes with chosen
// identities and per-client capability grants.
//
// It exists for tests only and may import tailscale.com freely. Everything
// it starts is stopped by the test's cleanup.
//
// Identity and grant changes are pushed to every node immediately, and the
// functions that make them (NewClient, SetGrant) return only once every
// node started with StartNode reports the new state from WhoIs, so a test
// can connect right away without polling.
package tailnettest

import (
	"context"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/tailnet"
	"github.com/waypoint-proxy/waypoint/internal/tailnet/devnet"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

// startTimeout bounds bringing one node up.
const startTimeout = 60 * time.Second

// syncTimeout bounds waiting for every node to see an identity or grant change.
const syncTimeout = 20 * time.Second

// MagicDNSDomain is the test tailnet's DNS suffix: node "waypoint" is also
// "waypoint.tailnettest.ts.net", the name its certificate domain carries.
const MagicDNSDomain = "tailnettest.ts.net"

// verboseEnv, when "1", sends tsnet backend logs of every node to the test log
// (very verbose). Control-server and DERP logs go to the test log with -v.
const verboseEnv = "TAILNETTEST_VERBOSE"

// Tailnet is an in-process tailnet. Its methods are safe for concurrent use,
// except that those taking a testing.TB must be called from that test's
// goroutine (they may call tb.Fatal).
type Tailnet struct {
	// ControlURL is the control server's base URL, for tailnet.Options.
	ControlURL string

	tb   testing.TB
	net  *devnet.Net
	logs *testLogger

	mu      sync.Mutex
	nodes   []*tailnet.Node
	clients []*Client
}

// New starts a control server and a DERP/STUN server on 127.0.0.1. All are
// stopped at tb's cleanup, after every node started on the tailnet.
func New(tb testing.TB) *Tailnet {
	tb.Helper()
	logs := newTestLogger(tb)
	tb.Cleanup(logs.stop) // registered first, so it runs last
	var logf func(string, ...any)
	if testing.Verbose() {
		logf = logs.logf
	}
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	dn, err := devnet.Start(ctx, devnet.Options{Logf: logf, MagicDNSDomain: MagicDNSDomain})
	if err != nil {
		tb.Fatalf("tailnettest: %v", err)
	}
	tb.Cleanup(func() { dn.Close() })
	return &Tailnet{ControlURL: dn.ControlURL, tb: tb, net: dn, logs: logs}
}

// AuthKey is the key nodes must present to join this tailnet
// (tailnet.Options.AuthKey).
func (tn *Tailnet) AuthKey() string { return tn.net.AuthKey() }

// StartNode starts a proxy-side tailnet.Node named hostname, reading
// tailnet.DefaultCapability, with its state in a temporary directory. It is
// closed at tb's cleanup.
func (tn *Tailnet) StartNode(tb testing.TB, hostname string) *tailnet.Node {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	n, err := tailnet.Start(ctx, tailnet.Options{
		Hostname:   hostname,
		Dir:        testkit.StateDir(tb),
		AuthKey:    tn.net.AuthKey(),
		ControlURL: tn.ControlURL,
		Ephemeral:  true,
		Logf:       tn.logs.nodeLogf(),
	})
	if err != nil {
		tb.Fatalf("tailnettest: start node %q: %v", hostname, err)
	}
	tb.Cleanup(func() { n.Close() })
	tn.mu.Lock()
	tn.nodes = append(tn.nodes, n)
	tn.mu.Unlock()
	return n
}

// ProxyAddr is "ip:port" of node's tailnet IPv4 address, for clients to dial.
func (tn *Tailnet) ProxyAddr(node *tailnet.Node, port int) string {
	v4, _ := node.Addrs()
	return netip.AddrPortFrom(v4, uint16(port)).String()
}

// testLogger forwards logs to a test until the test's cleanup ends, then
// drops them, so that goroutines outliving the test cannot make it panic.
type testLogger struct {
	tb      testing.TB
	verbose bool // node backend logs too

	mu      sync.RWMutex
	stopped bool
}

func newTestLogger(tb testing.TB) *testLogger {
	return &testLogger{tb: tb, verbose: os.Getenv(verboseEnv) == "1"}
}

func (l *testLogger) logf(format string, args ...any) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if !l.stopped {
		l.tb.Logf(format, args...)
	}
}

// nodeLogf is the backend logger for nodes: nil (discard) unless verbose.
func (l *testLogger) nodeLogf() func(string, ...any) {
	if !l.verbose {
		return nil
	}
	return l.logf
}

func (l *testLogger) stop() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.stopped = true
}
