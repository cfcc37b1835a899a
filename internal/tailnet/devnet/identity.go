package devnet

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/netip"
	"slices"

	"tailscale.com/tailcfg"
	"tailscale.com/types/key"

	"github.com/waypoint-proxy/waypoint/internal/identity"
)

// principal is who the tailnet says a node belongs to.
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

// SetIdentity makes every node see the node at tailnet address node (either
// of its addresses) as owned by login, e.g. "alice@example.com"; nodes of the
// same login share one user. With tags, the node is a tagged node instead
// (its login is identity.TaggedLogin) and login is ignored. login "" with no
// tags gives a node with no user, which WhoIs cannot identify.
//
// Until SetIdentity is called, a node belongs to a user the control server
// made up for it. The change is pushed to every node; SetIdentity does not
// wait for them to receive it. It wraps ErrUnknownNode if no registered node
// has the address.
func (n *Net) SetIdentity(node netip.Addr, login string, tags ...string) error {
	k, err := n.nodeKey(node)
	if err != nil {
		return fmt.Errorf("devnet: set identity of %s: %w", node, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	p := principal{login: login, tags: slices.Sorted(slices.Values(tags))}
	if len(p.tags) > 0 {
		p.login = ""
		p.userID = taggedUserID
	} else {
		p.userID = n.userIDLocked(login)
	}
	n.principals[k] = p
	n.bumpLocked()
	return nil
}

// userIDLocked returns the user ID for login, the same for every node of
// that login. A node with no user gets an ID of its own.
func (n *Net) userIDLocked(login string) tailcfg.UserID {
	if login != "" {
		for _, p := range n.principals {
			if p.login == login && len(p.tags) == 0 {
				return p.userID
			}
		}
	}
	id := n.nextUserID
	n.nextUserID++
	return id
}

// SetGrant makes every node see the node at tailnet address src holding the
// app capability capability (e.g. "redo.com/cap/waypoint") with values, as
// a grant's "app" section in a tailnet policy file would: each value is one
// JSON value, sent compacted. No values removes the capability. The grant
// applies to connections from src to any node; open connections stay open.
//
// The change is pushed to every node; SetGrant does not wait for them to
// receive it. It wraps ErrUnknownNode if no registered node has the address,
// and reports invalid JSON without changing anything.
func (n *Net) SetGrant(src netip.Addr, capability string, values ...json.RawMessage) error {
	raw, err := compactAll(values)
	if err != nil {
		return fmt.Errorf("devnet: grant %q to %s: %w", capability, src, err)
	}
	k, err := n.nodeKey(src)
	if err != nil {
		return fmt.Errorf("devnet: grant %q to %s: %w", capability, src, err)
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	caps := n.grants[k]
	if len(raw) == 0 {
		delete(caps, tailcfg.PeerCapability(capability))
	} else {
		if caps == nil {
			caps = make(tailcfg.PeerCapMap)
		}
		caps[tailcfg.PeerCapability(capability)] = raw
	}
	if len(caps) == 0 {
		delete(n.grants, k)
	} else {
		n.grants[k] = caps
	}
	n.bumpLocked()
	return nil
}

// Grant returns the values of capability granted to the node at src, as
// SetGrant stored them (compacted JSON), or nil.
func (n *Net) Grant(src netip.Addr, capability string) []json.RawMessage {
	k, err := n.nodeKey(src)
	if err != nil {
		return nil
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	var out []json.RawMessage
	for _, v := range n.grants[k][tailcfg.PeerCapability(capability)] {
		out = append(out, json.RawMessage(v))
	}
	return out
}

// compactAll validates and compacts each JSON value.
func compactAll(values []json.RawMessage) ([]tailcfg.RawMessage, error) {
	raw := make([]tailcfg.RawMessage, 0, len(values))
	for _, v := range values {
		var buf bytes.Buffer
		if err := json.Compact(&buf, v); err != nil {
			return nil, fmt.Errorf("invalid JSON value %q: %w", v, err)
		}
		raw = append(raw, tailcfg.RawMessage(buf.String()))
	}
	return raw, nil
}

// nodeKey returns the key of the registered node with tailnet address addr.
func (n *Net) nodeKey(addr netip.Addr) (key.NodePublic, error) {
	addr = addr.Unmap()
	for _, node := range n.control.AllNodes() {
		for _, p := range node.Addresses {
			if p.Addr() == addr {
				return node.Key, nil
			}
		}
	}
	return key.NodePublic{}, ErrUnknownNode
}
