package tailnet

import (
	"errors"
	"fmt"
	"net"
	"strings"

	"tailscale.com/tsnet"
)

// ErrUntaggedServiceHost is wrapped by ListenService when the node has no
// ACL tags: Tailscale only lets tagged nodes host a Service.
var ErrUntaggedServiceHost = errors.New("a Tailscale Service host must be a tagged node: set [tailscale] advertise_tags")

// ListenService publishes the node as a host of the Tailscale Service name
// ("svc:waypoint-db") on TCP port, and returns a listener for connections
// made to the Service's address. Several Waypoint nodes may host the same
// Service; the tailnet spreads clients between them. The control plane must
// approve the node as a host (an admin, or autoApprovers in the policy).
// Callers of connections accepted here are identified with WhoIs as usual.
func (n *Node) ListenService(name string, port uint16) (net.Listener, error) {
	if !strings.HasPrefix(name, "svc:") {
		return nil, fmt.Errorf("service %q: the name must start with \"svc:\"", name)
	}
	ln, err := n.srv.ListenService(name, tsnet.ServiceModeTCP{Port: port})
	if errors.Is(err, tsnet.ErrUntaggedServiceHost) {
		return nil, fmt.Errorf("service %s: %w", name, ErrUntaggedServiceHost)
	}
	if err != nil {
		return nil, fmt.Errorf("service %s: %w", name, err)
	}
	return ln, nil
}
