// Package identity holds the value that describes who is on the other end of a
// tailnet connection. It is filled in at the Tailscale boundary (package
// tailnet) and read by every later stage; it imports only the standard library.
package identity

import (
	"context"
	"encoding/json"
	"errors"
	"net/netip"
	"sort"
	"strings"
)

// TaggedLogin is the login name Tailscale reports for a node that is owned by
// tags rather than by a user.
const TaggedLogin = "tagged-devices"

// Peer is the caller of one connection, as the tailnet reports it.
// A Peer is a plain value: it is safe to copy and to share between goroutines
// as long as nobody mutates its slices.
type Peer struct {
	// LoginName is the user's login, e.g. "alice@example.com". For a tagged
	// node it is TaggedLogin and Tags says who the node is.
	LoginName string
	// DisplayName is the user's display name, for logs only.
	DisplayName string
	// MachineName is the node's short host name, e.g. "laptop".
	MachineName string
	// NodeID is Tailscale's stable node ID. Two connections come from the same
	// machine exactly when their NodeIDs are equal.
	NodeID string
	// Tags are the node's ACL tags, sorted, e.g. ["tag:ci"]. Empty for a
	// user-owned node.
	Tags []string
	// Addr is the node's tailnet address the connection came from.
	Addr netip.Addr
	// Caps are the raw JSON capability values granted to this node under the
	// configured capability name, one per matching ACL grant, in the order
	// the control plane sent them. Nil means no grant at all.
	Caps []json.RawMessage
}

// ErrUnidentified is returned by a Resolver for a peer that has neither a user
// nor tags: such a caller cannot be given a role and is refused.
var ErrUnidentified = errors.New("peer has neither a user nor tags")

// Resolver says who is behind a connection's remote address.
// Implementations must be safe for concurrent use.
type Resolver interface {
	// WhoIs returns the Peer for remoteAddr ("ip:port"). It returns an error
	// wrapping ErrUnidentified for a peer with no user and no tags, and
	// another error when the address is unknown to the tailnet.
	WhoIs(ctx context.Context, remoteAddr string) (Peer, error)
}

// IsTagged reports whether the node is owned by tags rather than a user.
func (p Peer) IsTagged() bool {
	return len(p.Tags) > 0 && (p.LoginName == "" || p.LoginName == TaggedLogin)
}

// Subject is the stable name of the principal behind the peer, used for
// per-user limits, role ownership records and logs: the login name for a
// user's node, or the sorted tags joined by "," for a tagged node.
func (p Peer) Subject() string {
	if p.IsTagged() {
		tags := append([]string(nil), p.Tags...)
		sort.Strings(tags)
		return strings.Join(tags, ",")
	}
	return p.LoginName
}

// UserPart is the part of the subject that goes into a role name: the local
// part of the login name ("alice" for "alice@example.com"), or for a tagged
// node the first tag without its "tag:" prefix.
func (p Peer) UserPart() string {
	if p.IsTagged() {
		tags := append([]string(nil), p.Tags...)
		sort.Strings(tags)
		return strings.TrimPrefix(tags[0], "tag:")
	}
	local, _, _ := strings.Cut(p.LoginName, "@")
	return local
}
