// Package console is Waypoint's operator console: who is connected, how much
// each identity and instance carries, what was refused recently — and the
// means to end a session, end every session of an identity, or re-check an
// identity's grant now.
//
// One API, three faces: a JSON API over HTTP, the `waypoint sessions` and
// `waypoint terminate` commands (Client), and a server-rendered web page.
// Handler serves the first and the last on any net.Listener; cmd serves it
// on the tailnet (authorized per request by WhoIs and the "console" field of
// the caller's grant: Tailnet) and optionally on loopback (authorized by a
// token: Token).
//
// Data flows one way: Hub reads this instance's proxy servers and, through
// a coord.Fleet, asks every other instance sharing the Redis for its part;
// actions travel the same way to the instance that owns the session, where
// the proxy carries them out, logs them and writes them to the audit log.
// The package never imports tailscale.com: the tailnet arrives as an
// identity.Resolver and a net.Listener built in cmd.
package console
