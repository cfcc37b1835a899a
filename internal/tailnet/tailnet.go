// Package tailnet is Waypoint's boundary with Tailscale: it runs the proxy's
// own tailnet node (tsnet), hands out tailnet listeners and dialers, answers
// "who is this caller?" with an identity.Peer, serves Tailscale TLS
// certificates and reports policy changes.
//
// It is the only production package that imports tailscale.com; everything
// past it sees plain net.Listener, net.Conn and identity.Peer values.
package tailnet

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strings"
	"sync"

	"tailscale.com/client/local"
	"tailscale.com/envknob"
	"tailscale.com/logtail"
	"tailscale.com/tailcfg"
	"tailscale.com/tsnet"
)

// DefaultCapability is the app-capability name Waypoint reads from tailnet
// grants when Options.Capability is empty.
const DefaultCapability = "redo.com/cap/waypoint"

// Options configures a Node. Hostname and Dir are required; every other field
// may be left zero.
type Options struct {
	// Hostname is the node's name in the tailnet, e.g. "waypoint-db".
	Hostname string
	// Dir is the tsnet state directory (node key, certificates). It must be
	// unique per node and should persist across restarts, or the node will
	// register as a new machine each time.
	Dir string
	// AuthKey registers the node on first start. Empty means the node is
	// already registered in Dir, or TS_AUTHKEY is set in the environment.
	AuthKey string
	// ControlURL is the coordination server. Empty means Tailscale's (or
	// TS_CONTROL_URL from the environment); set it for Headscale or a test
	// control server.
	ControlURL string
	// Ephemeral registers the node as ephemeral: the control plane removes
	// it soon after it goes offline.
	Ephemeral bool
	// AdvertiseTags are ACL tags the node asks to own, e.g. ["tag:waypoint"].
	AdvertiseTags []string
	// Capability is the app-capability name whose grant values WhoIs reports
	// in identity.Peer.Caps. Empty means DefaultCapability.
	Capability string
	// Logf receives tsnet's backend logs (verbose, for debugging). Nil means
	// they are discarded.
	Logf func(format string, args ...any)
	// UserLogf receives tsnet's messages meant for an operator, such as the
	// login URL when the node needs interactive authentication. Nil means
	// they are discarded.
	UserLogf func(format string, args ...any)
}

// ErrUnknownPeer is wrapped by WhoIs when the address does not belong to any
// node in this node's network map.
var ErrUnknownPeer = errors.New("address is not a known tailnet peer")

// Node is the proxy's running tailnet node. All methods are safe for
// concurrent use. The Node owns its tsnet server; Close releases it.
type Node struct {
	srv        *tsnet.Server
	lc         *local.Client
	capability tailcfg.PeerCapability

	closeOnce sync.Once
	closeErr  error
	closed    chan struct{} // closed by Close
}

// Start brings a node up on the tailnet and waits until it is running; ctx
// bounds the wait (registration, first network map). On error nothing is
// left running.
//
// Start turns off Tailscale's log upload for the whole process
// (log.tailscale.com receives nothing; logs go only to Options.Logf). A
// tailnet whose policy requires data-plane audit logging therefore refuses
// the node, and Start fails with tsnet's explanation.
func Start(ctx context.Context, opts Options) (*Node, error) {
	if opts.Hostname == "" {
		return nil, errors.New("tailnet: start: hostname is required")
	}
	if opts.Dir == "" {
		return nil, errors.New("tailnet: start: state directory is required")
	}
	disableLogUpload()
	srv := newServer(opts)
	lc, err := srv.LocalClient() // starts the server
	if err != nil {
		srv.Close()
		return nil, fmt.Errorf("tailnet: start %q: %w", opts.Hostname, err)
	}
	if _, err := srv.Up(ctx); err != nil {
		srv.Close()
		return nil, fmt.Errorf("tailnet: start %q: %w", opts.Hostname, err)
	}
	return &Node{
		srv:        srv,
		lc:         lc,
		capability: tailcfg.PeerCapability(capabilityOrDefault(opts.Capability)),
		closed:     make(chan struct{}),
	}, nil
}

// newServer builds the (not yet started) tsnet server for opts.
func newServer(opts Options) *tsnet.Server {
	return &tsnet.Server{
		Hostname:      opts.Hostname,
		Dir:           opts.Dir,
		AuthKey:       opts.AuthKey,
		ControlURL:    opts.ControlURL,
		Ephemeral:     opts.Ephemeral,
		AdvertiseTags: opts.AdvertiseTags,
		Logf:          logfOrDiscard(opts.Logf),
		UserLogf:      logfOrDiscard(opts.UserLogf),
	}
}

// disableLogUpload switches off Tailscale log upload and network flow logs
// for the process. Both switches are process-wide and idempotent; tsnet reads
// them when a server starts.
func disableLogUpload() {
	envknob.SetNoLogsNoSupport()
	logtail.Disable()
}

func capabilityOrDefault(c string) string {
	if c == "" {
		return DefaultCapability
	}
	return c
}

func logfOrDiscard(f func(string, ...any)) func(string, ...any) {
	if f == nil {
		return func(string, ...any) {}
	}
	return f
}

// Listen announces on the tailnet, e.g. Listen("tcp", ":5432"). Accepted
// connections' RemoteAddr is the caller's tailnet address, suitable for
// WhoIs. The caller closes the listener; Close of the Node closes it too.
func (n *Node) Listen(network, addr string) (net.Listener, error) {
	ln, err := n.srv.Listen(network, addr)
	if err != nil {
		return nil, fmt.Errorf("tailnet: listen %s %s: %w", network, addr, err)
	}
	return ln, nil
}

// Dial connects to addr over the tailnet.
func (n *Node) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := n.srv.Dial(ctx, network, addr)
	if err != nil {
		return nil, fmt.Errorf("tailnet: dial %s %s: %w", network, addr, err)
	}
	return c, nil
}

// Addrs returns the node's tailnet IPv4 and IPv6 addresses. Either is the
// zero netip.Addr if the node does not have one (yet).
func (n *Node) Addrs() (v4, v6 netip.Addr) {
	return n.srv.TailscaleIPs()
}

// DNSName returns the node's fully qualified MagicDNS name without the
// trailing dot (e.g. "waypoint-db.tail1234.ts.net"), or "" when the node
// has none or the local API does not answer within ctx.
func (n *Node) DNSName(ctx context.Context) string {
	st, err := n.lc.StatusWithoutPeers(ctx)
	if err != nil || st.Self == nil {
		return ""
	}
	return strings.TrimSuffix(st.Self.DNSName, ".")
}

// CertDomains returns the DNS names (e.g. "waypoint-db.tail1234.ts.net") this
// node may obtain TLS certificates for. It is empty when HTTPS certificates
// are not enabled for the tailnet.
func (n *Node) CertDomains() []string {
	return n.srv.CertDomains()
}

// GetCertificate returns a Tailscale-issued certificate for
// hello.ServerName; it has the signature of tls.Config.GetCertificate.
// Certificates are cached in the state directory and renewed by tsnet.
func (n *Node) GetCertificate(hello *tls.ClientHelloInfo) (*tls.Certificate, error) {
	cert, err := n.lc.GetCertificate(hello)
	if err != nil {
		return nil, fmt.Errorf("tailnet: certificate: %w", err)
	}
	return cert, nil
}

// Close leaves the tailnet: it closes all listeners and connections made
// through the node and stops tsnet. It is idempotent; later calls return the
// first call's result.
func (n *Node) Close() error {
	n.closeOnce.Do(func() {
		close(n.closed)
		if err := n.srv.Close(); err != nil {
			n.closeErr = fmt.Errorf("tailnet: close: %w", err)
		}
	})
	return n.closeErr
}

func (n *Node) isClosed() bool {
	select {
	case <-n.closed:
		return true
	default:
		return false
	}
}
