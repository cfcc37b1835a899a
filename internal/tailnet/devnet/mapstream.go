package devnet

import (
	"context"
	"maps"
	"net/netip"
	"slices"
	"time"

	"tailscale.com/net/tsaddr"
	"tailscale.com/tailcfg"
	"tailscale.com/tstest/integration/testcontrol"
	"tailscale.com/types/key"
)

// keepAliveInterval is how often an idle map stream sends a keep-alive, well
// inside the client's two-minute watchdog.
const keepAliveInterval = 30 * time.Second

// serveMap is the control server's map-stream handler (testcontrol's
// AltMapStream). It stores what a node reports about itself, and streams
// testcontrol's network map with this package's users, tags and per-source
// capability grants applied, resending it on every change.
func (n *Net) serveMap(ctx context.Context, w testcontrol.MapStreamWriter, req *tailcfg.MapRequest) {
	if n.storeNodeUpdate(req) {
		n.bump()
	}
	if !req.Stream {
		if req.OmitPeers { // an endpoint update; the client ignores the body
			w.SendMapMessage(&tailcfg.MapResponse{})
			return
		}
		n.sendMap(w, req)
		return
	}
	n.bump() // a node (re)connected: everyone gets its current state
	n.streamMaps(ctx, w, req)
}

// streamMaps sends the network map now and after every change, with
// keep-alives in between, until ctx is done or the Net is closed.
func (n *Net) streamMaps(ctx context.Context, w testcontrol.MapStreamWriter, req *tailcfg.MapRequest) {
	keepAlive := time.NewTicker(keepAliveInterval)
	defer keepAlive.Stop()
	for {
		changed := n.changedChan()
		if !n.sendMap(w, req) {
			return
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-n.closed:
				return
			case <-changed:
				break wait
			case <-keepAlive.C:
				if w.SendMapMessage(&tailcfg.MapResponse{KeepAlive: true}) != nil {
					return
				}
			}
		}
	}
}

// sendMap sends req's node its full network map, reporting success.
func (n *Net) sendMap(w testcontrol.MapStreamWriter, req *tailcfg.MapRequest) bool {
	res, err := n.control.MapResponse(req)
	if err != nil || res == nil {
		return false
	}
	n.rewrite(res)
	return w.SendMapMessage(res) == nil
}

// storeNodeUpdate records the endpoints, disco key and host info a node
// reports, as testcontrol's own handler does. Modern clients send these in
// non-streaming requests; a streaming one is read-only. It reports whether
// anything was stored.
func (n *Net) storeNodeUpdate(req *tailcfg.MapRequest) bool {
	if req.ReadOnly || (req.Stream && req.Version >= 68) {
		return false
	}
	n.mu.Lock() // serialize read-modify-write of the stored node
	defer n.mu.Unlock()
	node := n.control.Node(req.NodeKey)
	if node == nil {
		return false
	}
	node.Endpoints = usableEndpoints(req.Endpoints)
	node.DiscoKey = req.DiscoKey
	node.Cap = req.Version
	if req.Hostinfo != nil {
		node.Hostinfo = req.Hostinfo.View()
		if ni := req.Hostinfo.NetInfo; ni != nil && ni.PreferredDERP != 0 {
			node.HomeDERP = ni.PreferredDERP
		}
	}
	n.control.UpdateNode(node)
	return true
}

// usableEndpoints drops link-local and zoned IPv6 endpoints, which peers
// cannot use.
func usableEndpoints(eps []netip.AddrPort) []netip.AddrPort {
	var out []netip.AddrPort
	for _, ep := range eps {
		if ep.Addr().Zone() != "" || (ep.Addr().Is6() && ep.Addr().IsLinkLocalUnicast()) {
			continue
		}
		out = append(out, ep)
	}
	return out
}

// rewrite applies principals and grants to a map response.
func (n *Net) rewrite(res *tailcfg.MapResponse) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, node := range append([]*tailcfg.Node{res.Node}, res.Peers...) {
		if p, ok := n.principals[node.Key]; ok {
			node.User = p.userID
			node.Tags = slices.Clone(p.tags)
		}
	}
	seen := make(map[tailcfg.UserID]bool)
	for _, p := range n.principals {
		if !seen[p.userID] {
			seen[p.userID] = true
			res.UserProfiles = append(res.UserProfiles, p.profile())
		}
	}
	res.PacketFilter = append(res.PacketFilter, n.grantRulesLocked()...)
}

// grantRulesLocked is one packet-filter rule per node with grants: its
// addresses may present those capabilities to every node.
func (n *Net) grantRulesLocked() []tailcfg.FilterRule {
	var rules []tailcfg.FilterRule
	for _, k := range slices.SortedFunc(maps.Keys(n.grants), key.NodePublic.Compare) {
		node := n.control.Node(k)
		if node == nil {
			continue
		}
		var srcs []string
		for _, a := range node.Addresses {
			srcs = append(srcs, a.Addr().String())
		}
		rules = append(rules, tailcfg.FilterRule{
			SrcIPs: srcs,
			CapGrant: []tailcfg.CapGrant{{
				Dsts:   []netip.Prefix{tsaddr.AllIPv4(), tsaddr.AllIPv6()},
				CapMap: maps.Clone(n.grants[k]),
			}},
		})
	}
	return rules
}

// changedChan returns the channel closed at the next change.
func (n *Net) changedChan() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.changed
}

// bump makes every map stream resend its network map.
func (n *Net) bump() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.bumpLocked()
}

func (n *Net) bumpLocked() {
	close(n.changed)
	n.changed = make(chan struct{})
}
