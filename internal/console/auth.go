package console

import (
	"context"
	"crypto/subtle"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
)

// Caller is who made a console request and what they may do.
type Caller struct {
	// Name is the tailnet login (or tags) of the caller; "local" on the
	// loopback face.
	Name    string
	Machine string
	NodeID  string
	// Via is "tailnet" or "local".
	Via    string
	Access authz.ConsoleAccess
	// Why says, when Access is none, what is missing, in words safe to
	// show the caller: it becomes the 403 (or 401) message.
	Why string
	// Challenge asks the client for credentials (401 with a Basic
	// challenge, so that a browser prompts for the token) instead of 403.
	Challenge bool
}

// Operator is the caller as the proxy records actions.
func (c Caller) Operator() proxy.Operator {
	return proxy.Operator{Login: c.Name, Machine: c.Machine, NodeID: c.NodeID, Via: c.Via}
}

// csrfSubject is what a form token is bound to: the caller's node, or the
// local face.
func (c Caller) csrfSubject() string {
	return c.Via + "|" + c.NodeID + "|" + c.Name
}

// Authorizer decides, for each request, who the caller is and what they
// may do. Implementations must be safe for concurrent use.
type Authorizer interface {
	Authorize(r *http.Request) Caller
}

// whoIsTimeout bounds one WhoIs for a console request.
const whoIsTimeout = 5 * time.Second

// Tailnet authorizes requests that arrive on the tailnet: the caller is
// whoever WhoIs says is behind the request's remote address, and their
// access is the "console" field of their grant (authz.Console).
type Tailnet struct {
	// Resolver identifies the caller (the tailnet node). Required.
	Resolver identity.Resolver
	// Capability is the app-capability name grants are read from, for the
	// 403 message. "" means the default.
	Capability string
}

// Authorize implements Authorizer.
func (t Tailnet) Authorize(r *http.Request) Caller {
	ctx, cancel := context.WithTimeout(r.Context(), whoIsTimeout)
	defer cancel()
	peer, err := t.Resolver.WhoIs(ctx, r.RemoteAddr)
	if err != nil {
		return Caller{Via: "tailnet", Why: "Waypoint could not identify your tailnet node; connect from a node that belongs to a user or carries tags."}
	}
	c := Caller{Name: peer.Subject(), Machine: peer.MachineName, NodeID: peer.NodeID, Via: "tailnet"}
	access, err := authz.Console(peer.Caps)
	switch {
	case err != nil:
		c.Why = fmt.Sprintf("The Waypoint grant of %s (%s) is invalid, so it grants no console access: %v", c.Name, c.Machine, err)
	case access == authz.ConsoleNone:
		c.Why = fmt.Sprintf("%s (%s) has no console access. Ask your tailnet administrator for a grant with %s (to look) or %s (to act) in the capability %s.",
			c.Name, c.Machine, `"console": "view"`, `"console": "admin"`, t.capability())
	}
	c.Access = access
	return c
}

func (t Tailnet) capability() string {
	if t.Capability == "" {
		return "redo.com/cap/waypoint"
	}
	return t.Capability
}

// Token authorizes requests on the loopback face: whoever presents the
// token — as "Authorization: Bearer <token>", or as the password of HTTP
// Basic authentication, so that a browser can prompt for it — is the
// operator "local" with admin access. The token lives in a file only the
// service user (and root) can read, so the loopback face is as private as
// that file.
type Token struct {
	// Token is the secret; it must not be empty.
	Token string
}

// Authorize implements Authorizer.
func (t Token) Authorize(r *http.Request) Caller {
	c := Caller{Name: "local", Via: "local"}
	if t.Token != "" && subtle.ConstantTimeCompare([]byte(presentedToken(r)), []byte(t.Token)) == 1 {
		c.Access = authz.ConsoleAdmin
		return c
	}
	c.Why = "The local console needs the token from Waypoint's console token file (local_token_file): send it as \"Authorization: Bearer <token>\" or as the password of Basic authentication."
	c.Challenge = true
	return c
}

// presentedToken returns the token a request carries, or "".
func presentedToken(r *http.Request) string {
	if _, pw, ok := r.BasicAuth(); ok {
		return pw
	}
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok {
		return strings.TrimSpace(tok)
	}
	return ""
}
