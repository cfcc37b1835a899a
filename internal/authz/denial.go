package authz

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/waypoint-proxy/waypoint/internal/identity"
)

// Reason says why a connection was refused.
type Reason int

// The reasons Decide refuses a connection.
const (
	// NoGrant: the caller has no capability for Waypoint at all.
	NoGrant Reason = iota + 1
	// NoListener: the caller has grants, but none for this listener.
	NoListener
	// NoDatabase: the listener is granted, but not this database.
	NoDatabase
	// BadGrant: the caller's grant is malformed (invalid JSON, unknown
	// preset, malformed limit, ...); Detail says precisely what.
	BadGrant
	// RawSQLNotAllowed: the grant carries raw "sql" statements, the listener
	// does not allow raw SQL, and the connection is not preset-limited.
	RawSQLNotAllowed
	// NoPermissions: the database is granted with no permissions.
	NoPermissions
	// BadPresetRequest: Request.MaxPreset is not a preset name.
	BadPresetRequest
)

// String returns the reason's stable, lower-case name, for logs and metrics.
func (r Reason) String() string {
	switch r {
	case NoGrant:
		return "no_grant"
	case NoListener:
		return "no_listener"
	case NoDatabase:
		return "no_database"
	case BadGrant:
		return "bad_grant"
	case RawSQLNotAllowed:
		return "raw_sql_not_allowed"
	case NoPermissions:
		return "no_permissions"
	case BadPresetRequest:
		return "bad_preset_request"
	default:
		return fmt.Sprintf("reason(%d)", int(r))
	}
}

// Denial is the error Decide returns when it refuses a connection. Error is
// for the operator's log (it includes Detail); ClientMessage is safe to send
// to the client.
type Denial struct {
	Reason Reason
	// Login is the caller's login name ("tagged-devices" for a tagged node).
	Login string
	// Tags are the caller's ACL tags; they name a tagged node.
	Tags []string
	// Machine is the caller's machine name.
	Machine string
	// Listener and Database are what the caller asked for.
	Listener string
	Database string
	// Detail explains a BadGrant or BadPresetRequest precisely (the field
	// path and offending value). It may name parts of the tailnet policy, so
	// ClientMessage leaves it out for BadGrant.
	Detail string
	// ClientDetail is the part of a BadGrant's Detail the client is told:
	// set only when the grant holds a field Waypoint does not know, to where
	// that field is and its name, so that the caller can tell the tailnet
	// admin exactly what to fix. Field names and paths are the shape of the
	// caller's own grant, not values from it. "" otherwise.
	ClientDetail string
}

// newDenial returns a Denial of peer's request for reason r.
func newDenial(r Reason, peer identity.Peer, req Request, detail string) *Denial {
	d := &Denial{
		Reason:   r,
		Login:    peer.LoginName,
		Tags:     append([]string(nil), peer.Tags...),
		Machine:  peer.MachineName,
		Listener: req.Listener,
		Database: req.Database,
		Detail:   detail,
	}
	if r == BadGrant {
		d.ClientDetail = unknownFieldDetail(peer.Caps)
	}
	return d
}

// unknownFieldDetail returns where caps hold a field Waypoint does not know,
// e.g. `capability value 1, grant object 1:
// backends["pg-main"].pg.databases["appdb"]: unknown field "schema"
// (allowed: permissions, schemas, sql)`, or "" when ParseGrants refuses caps
// for another reason (or not at all). It parses caps again: Decide hands
// newDenial only the error text, and this runs only for a refusal.
func unknownFieldDetail(caps []json.RawMessage) string {
	_, err := ParseGrants(caps)
	if !errors.Is(err, ErrUnknownField) {
		return ""
	}
	return strings.TrimPrefix(err.Error(), ErrBadGrant.Error()+": ")
}

// who names the caller: `alice@example.com (laptop)`, or for a tagged node
// `tagged node tag:ci,tag:db (runner)`.
func (d *Denial) who() string {
	var s string
	switch {
	case len(d.Tags) > 0 && (d.Login == "" || d.Login == identity.TaggedLogin):
		s = "tagged node " + strings.Join(d.Tags, ",")
	case d.Login != "":
		s = d.Login
	default:
		s = "unknown caller"
	}
	if d.Machine != "" {
		s += " (" + d.Machine + ")"
	}
	return s
}

// target names the database and listener: `database "appdb" on listener "pg-main"`.
func (d *Denial) target() string {
	return fmt.Sprintf("database %q on listener %q", d.Database, d.Listener)
}

// Error returns one sentence for the operator naming the caller, machine,
// listener, database and reason, with Detail appended when set.
func (d *Denial) Error() string {
	var s string
	switch d.Reason {
	case NoGrant:
		s = fmt.Sprintf("%s has no Waypoint grant in the tailnet policy (wanted %s)", d.who(), d.target())
	case NoListener:
		s = fmt.Sprintf("%s has no grant for listener %q (wanted database %q)", d.who(), d.Listener, d.Database)
	case NoDatabase:
		s = fmt.Sprintf("%s has no grant for %s", d.who(), d.target())
	case BadGrant:
		s = fmt.Sprintf("%s has a malformed grant in the tailnet policy (wanted %s)", d.who(), d.target())
	case RawSQLNotAllowed:
		s = fmt.Sprintf("%s has a grant with raw \"sql\" statements for %s, but allow_raw_sql is off for that listener", d.who(), d.target())
	case NoPermissions:
		s = fmt.Sprintf("%s has a grant for %s with no permissions", d.who(), d.target())
	case BadPresetRequest:
		s = fmt.Sprintf("%s sent an invalid waypoint_presets request for %s", d.who(), d.target())
	default:
		s = fmt.Sprintf("%s was refused %s (%v)", d.who(), d.target(), d.Reason)
	}
	if d.Detail != "" {
		s += ": " + d.Detail
	}
	return s
}

// ClientMessage returns the refusal phrased for the client: who was refused,
// for which database and listener, and what to do about it. It never contains
// grant JSON, SQL or the Detail of a BadGrant; of a BadGrant it says only
// ClientDetail (where an unknown field is, and its name).
func (d *Denial) ClientMessage() string {
	prefix := fmt.Sprintf("access denied: %s", d.who())
	switch d.Reason {
	case NoGrant:
		return fmt.Sprintf("%s has no Waypoint grant for %s; ask your tailnet admin to add a grant for listener %q to the tailnet policy", prefix, d.target(), d.Listener)
	case NoListener:
		return fmt.Sprintf("%s has no grant for listener %q (database %q); ask your tailnet admin to add listener %q to your grant", prefix, d.Listener, d.Database, d.Listener)
	case NoDatabase:
		return fmt.Sprintf("%s has no grant for %s; ask your tailnet admin to add database %q to your grant for listener %q", prefix, d.target(), d.Database, d.Listener)
	case BadGrant:
		if d.ClientDetail != "" {
			return fmt.Sprintf("%s cannot use %s because your grant in the tailnet policy is malformed: %s; ask your tailnet admin to fix that field (Waypoint refuses a grant it cannot fully read)", prefix, d.target(), d.ClientDetail)
		}
		return fmt.Sprintf("%s cannot use %s because your grant in the tailnet policy is malformed; ask your tailnet admin to fix it (the Waypoint log says what is wrong)", prefix, d.target())
	case RawSQLNotAllowed:
		return fmt.Sprintf("%s cannot use %s because your grant contains raw \"sql\" statements, which this listener does not allow; ask your tailnet admin to remove them or to enable allow_raw_sql, or connect with waypoint_presets=readonly (or another preset) to skip them", prefix, d.target())
	case NoPermissions:
		return fmt.Sprintf("%s has a grant for %s without permissions; ask your tailnet admin to add \"permissions\" (%s) to it", prefix, d.target(), presetNames)
	case BadPresetRequest:
		return fmt.Sprintf("%s sent an invalid waypoint_presets value for %s; use %s", prefix, d.target(), presetNames)
	default:
		return fmt.Sprintf("%s for %s; ask your tailnet admin for access", prefix, d.target())
	}
}
