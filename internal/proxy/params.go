package proxy

import (
	"strings"
	"unicode/utf8"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
)

// forwardedParams are the client's startup parameters the backend should see:
// everything but user, database and Waypoint's own preset request, plus the
// caller's identity as custom settings (waypoint.login, waypoint.machine,
// waypoint.node; `SHOW waypoint.login` on the backend) and, when the client
// set no application_name, "waypoint <login>" so pg_stat_activity and the
// server log show the human.
func forwardedParams(params map[string]string, peer identity.Peer) map[string]string {
	out := authz.StripPresetRequest(params)
	delete(out, "user")
	delete(out, "database")
	for k := range out {
		if strings.HasPrefix(strings.ToLower(k), "waypoint.") {
			delete(out, k) // the client cannot pose as someone else
		}
	}
	out["waypoint.login"] = peer.Subject()
	out["waypoint.machine"] = peer.MachineName
	out["waypoint.node"] = peer.NodeID
	if out["application_name"] == "" {
		out["application_name"] = truncateName("waypoint " + peer.Subject())
	}
	return out
}

// truncateName cuts s to PostgreSQL's 63-byte name limit on a rune boundary.
func truncateName(s string) string {
	if len(s) <= 63 {
		return s
	}
	cut := 63
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
}
