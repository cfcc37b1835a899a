package tailnet

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strings"

	"tailscale.com/client/local"
	"tailscale.com/client/tailscale/apitype"
	"tailscale.com/tailcfg"

	"github.com/waypoint-proxy/waypoint/internal/identity"
)

// Node implements identity.Resolver.
var _ identity.Resolver = (*Node)(nil)

// WhoIs says who is behind remoteAddr, the RemoteAddr of a connection
// accepted on one of the node's listeners ("ip:port"; a bare "ip" is also
// accepted). Caps holds the raw values of the node's configured capability.
//
// Errors: after Close, an error wrapping net.ErrClosed; an address that belongs to no known peer wraps ErrUnknownPeer; a
// peer with neither a user nor tags wraps identity.ErrUnidentified.
func (n *Node) WhoIs(ctx context.Context, remoteAddr string) (identity.Peer, error) {
	if n.isClosed() {
		return identity.Peer{}, fmt.Errorf("tailnet: whois: %w", net.ErrClosed)
	}
	addr, err := parseRemoteAddr(remoteAddr)
	if err != nil {
		return identity.Peer{}, fmt.Errorf("tailnet: whois: %w", err)
	}
	res, err := n.lc.WhoIs(ctx, remoteAddr)
	if errors.Is(err, local.ErrPeerNotFound) {
		return identity.Peer{}, fmt.Errorf("tailnet: whois %s: %w", addr, ErrUnknownPeer)
	}
	if err != nil {
		return identity.Peer{}, fmt.Errorf("tailnet: whois %s: %w", addr, err)
	}
	p, err := peerFromWhoIs(res, addr, n.capability)
	if err != nil {
		return identity.Peer{}, fmt.Errorf("tailnet: whois %s: %w", addr, err)
	}
	return p, nil
}

// parseRemoteAddr returns the IP of "ip:port" or "ip".
func parseRemoteAddr(s string) (netip.Addr, error) {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return ap.Addr().Unmap(), nil
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("invalid remote address %q: want ip:port", s)
	}
	return a.Unmap(), nil
}

// peerFromWhoIs converts a WhoIs answer for addr into a Peer, keeping the
// values of capability as raw JSON.
func peerFromWhoIs(res *apitype.WhoIsResponse, addr netip.Addr, capability tailcfg.PeerCapability) (identity.Peer, error) {
	if res == nil || res.Node == nil {
		return identity.Peer{}, errors.New("control plane sent no node for the address")
	}
	node := res.Node
	p := identity.Peer{
		MachineName: machineName(node),
		NodeID:      string(node.StableID),
		Addr:        addr,
		Caps:        rawCaps(res.CapMap[capability]),
	}
	if node.IsTagged() {
		p.LoginName = identity.TaggedLogin
		p.Tags = slices.Sorted(slices.Values(node.Tags))
		return p, nil
	}
	if up := res.UserProfile; up != nil {
		p.LoginName = up.LoginName
		p.DisplayName = up.DisplayName
	}
	if p.LoginName == "" || p.LoginName == identity.TaggedLogin {
		return identity.Peer{}, fmt.Errorf("node %s (%s): %w", p.NodeID, p.MachineName, identity.ErrUnidentified)
	}
	return p, nil
}

// machineName is the node's short host name: the first label of its MagicDNS
// name, or its OS host name when it has none.
func machineName(node *tailcfg.Node) string {
	for _, name := range []string{node.ComputedName, node.Name} {
		if label, _, _ := strings.Cut(name, "."); label != "" {
			return label
		}
	}
	if node.Hostinfo.Valid() {
		return node.Hostinfo.Hostname()
	}
	return ""
}

// rawCaps copies capability values into JSON values, compacted (the local
// API re-indents them). Nil in, nil out.
func rawCaps(vals []tailcfg.RawMessage) []json.RawMessage {
	if vals == nil {
		return nil
	}
	out := make([]json.RawMessage, len(vals))
	for i, v := range vals {
		out[i] = compactJSON([]byte(v))
	}
	return out
}

// compactJSON returns b without insignificant white space, or b unchanged if
// it is not valid JSON (authz rejects it later).
func compactJSON(b []byte) json.RawMessage {
	var buf bytes.Buffer
	if err := json.Compact(&buf, b); err != nil {
		return json.RawMessage(b)
	}
	return json.RawMessage(buf.Bytes())
}
