package tailnettest

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

	"github.com/waypoint-proxy/waypoint/internal/identity"
)

// User IDs this package assigns; testcontrol numbers its own users from 1.
const (
	firstUserID  tailcfg.UserID = 1_000_000
	taggedUserID tailcfg.UserID = 999_999
)

// keepAliveInterval is how often an idle map stream sends a keep-alive, well
// inside the client's two-minute watchdog.
const keepAliveInterval = 30 * time.Second

// principal is who the tailnet says a client node belongs to.
type principal struct {
	userID tailcfg.UserID
	login  string   // "" with no tags: a node with no user
	tags   []string // sorted; non-empty means a tagged node
}

// profile is the user profile the tailnet sends for p.
func (p principal) profile() tailcfg.UserProfile {
	if len(p.tags) > 0 {
		return tailcfg.UserProfile{ID: p.userID, LoginName: identity.TaggedLogin, DisplayName: "Tagged Devices"}
	}
	return tailcfg.UserProfile{ID: p.userID, LoginName: p.login, DisplayName: p.login}
}

// serveMap is the control server's map-stream handler (testcontrol's
// AltMapStream). It stores what a node reports about itself, and streams
// testcontrol's network map with this package's users, tags and per-source
// capability grants applied, resending it on every change.
func (tn *Tailnet) serveMap(ctx context.Context, w testcontrol.MapStreamWriter, req *tailcfg.MapRequest) {
	if tn.storeNodeUpdate(req) {
		tn.bump()
	}
	if !req.Stream {
		if req.OmitPeers { // an endpoint update; the client ignores the body
			w.SendMapMessage(&tailcfg.MapResponse{})
			return
		}
		tn.sendMap(w, req)
		return
	}
	tn.bump() // a node (re)connected: everyone gets its current state
	tn.streamMaps(ctx, w, req)
}

// streamMaps sends the network map now and after every change, with
// keep-alives in between, until ctx is done or the tailnet is closed.
func (tn *Tailnet) streamMaps(ctx context.Context, w testcontrol.MapStreamWriter, req *tailcfg.MapRequest) {
	keepAlive := time.NewTicker(keepAliveInterval)
	defer keepAlive.Stop()
	for {
		changed := tn.changedChan()
		if !tn.sendMap(w, req) {
			return
		}
	wait:
		for {
			select {
			case <-ctx.Done():
				return
			case <-tn.closed:
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
func (tn *Tailnet) sendMap(w testcontrol.MapStreamWriter, req *tailcfg.MapRequest) bool {
	res, err := tn.control.MapResponse(req)
	if err != nil || res == nil {
		return false
	}
	tn.rewrite(res)
	return w.SendMapMessage(res) == nil
}

// storeNodeUpdate records the endpoints, disco key and host info a node
// reports, as testcontrol's own handler does. Modern clients send these in
// non-streaming requests; a streaming one is read-only. It reports whether
// anything was stored.
func (tn *Tailnet) storeNodeUpdate(req *tailcfg.MapRequest) bool {
	if req.ReadOnly || (req.Stream && req.Version >= 68) {
		return false
	}
	tn.mu.Lock() // serialize read-modify-write of the stored node
	defer tn.mu.Unlock()
	n := tn.control.Node(req.NodeKey)
	if n == nil {
		return false
	}
	n.Endpoints = usableEndpoints(req.Endpoints)
	n.DiscoKey = req.DiscoKey
	n.Cap = req.Version
	if req.Hostinfo != nil {
		n.Hostinfo = req.Hostinfo.View()
		if ni := req.Hostinfo.NetInfo; ni != nil && ni.PreferredDERP != 0 {
			n.HomeDERP = ni.PreferredDERP
		}
	}
	tn.control.UpdateNode(n)
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
func (tn *Tailnet) rewrite(res *tailcfg.MapResponse) {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	for _, n := range append([]*tailcfg.Node{res.Node}, res.Peers...) {
		if p, ok := tn.principals[n.Key]; ok {
			n.User = p.userID
			n.Tags = slices.Clone(p.tags)
		}
	}
	seen := make(map[tailcfg.UserID]bool)
	for _, p := range tn.principals {
		if !seen[p.userID] {
			seen[p.userID] = true
			res.UserProfiles = append(res.UserProfiles, p.profile())
		}
	}
	res.PacketFilter = append(res.PacketFilter, tn.grantRulesLocked()...)
}

// grantRulesLocked is one packet-filter rule per client with grants: its
// addresses may present those capabilities to every node.
func (tn *Tailnet) grantRulesLocked() []tailcfg.FilterRule {
	var rules []tailcfg.FilterRule
	for _, k := range slices.SortedFunc(maps.Keys(tn.grants), key.NodePublic.Compare) {
		n := tn.control.Node(k)
		if n == nil {
			continue
		}
		var srcs []string
		for _, a := range n.Addresses {
			srcs = append(srcs, a.Addr().String())
		}
		rules = append(rules, tailcfg.FilterRule{
			SrcIPs: srcs,
			CapGrant: []tailcfg.CapGrant{{
				Dsts:   []netip.Prefix{tsaddr.AllIPv4(), tsaddr.AllIPv6()},
				CapMap: maps.Clone(tn.grants[k]),
			}},
		})
	}
	return rules
}

// changedChan returns the channel closed at the next change.
func (tn *Tailnet) changedChan() <-chan struct{} {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	return tn.changed
}

// bump makes every map stream resend its network map.
func (tn *Tailnet) bump() {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	tn.bumpLocked()
}

func (tn *Tailnet) bumpLocked() {
	close(tn.changed)
	tn.changed = make(chan struct{})
}

// setPrincipal records who owns the node with key k and pushes it out.
func (tn *Tailnet) setPrincipal(k key.NodePublic, login string, tags []string) {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	p := principal{login: login, tags: slices.Sorted(slices.Values(tags))}
	if len(p.tags) > 0 {
		p.userID = taggedUserID
	} else {
		p.userID = tn.userIDLocked(login)
	}
	tn.principals[k] = p
	tn.bumpLocked()
}

// userIDLocked returns the user ID for login, the same for every node of
// that login. A node with no user gets an ID of its own.
func (tn *Tailnet) userIDLocked(login string) tailcfg.UserID {
	if login != "" {
		for _, p := range tn.principals {
			if p.login == login && len(p.tags) == 0 {
				return p.userID
			}
		}
	}
	id := tn.nextUserID
	tn.nextUserID++
	return id
}

// setGrant replaces the values of capability granted to the node with key k
// (none: removed) and pushes it out.
func (tn *Tailnet) setGrant(k key.NodePublic, capability tailcfg.PeerCapability, values []tailcfg.RawMessage) {
	tn.mu.Lock()
	defer tn.mu.Unlock()
	caps := tn.grants[k]
	if len(values) == 0 {
		delete(caps, capability)
	} else {
		if caps == nil {
			caps = make(tailcfg.PeerCapMap)
		}
		caps[capability] = values
	}
	if len(caps) == 0 {
		delete(tn.grants, k)
	} else {
		tn.grants[k] = caps
	}
	tn.bumpLocked()
}
