package provision

import (
	"encoding/json"
	"strings"
)

// Kinds of owner record.
const (
	recordUser  = "user"
	recordGroup = "group"
)

// ownerRecord is the JSON comment (COMMENT ON ROLE) on every role Waypoint
// creates. A role without a parseable record with Waypoint == 1 is not
// Waypoint's and is never altered, granted to or dropped.
type ownerRecord struct {
	Waypoint int    `json:"waypoint"`          // format version, 1
	Kind     string `json:"kind"`              // recordUser or recordGroup
	Subject  string `json:"subject,omitempty"` // identity.Peer.Subject (users)
	Node     string `json:"node,omitempty"`    // identity.Peer.NodeID (users)
	Machine  string `json:"machine,omitempty"` // identity.Peer.MachineName (users); informational
	Database string `json:"db"`                // the database the role is for
	Schema   string `json:"schema,omitempty"`  // groups: the schema
	Preset   string `json:"preset,omitempty"`  // groups; users only when preset-limited
	SQL      string `json:"sql,omitempty"`     // users: hash of the raw SQL last applied
	Grant    string `json:"grant,omitempty"`   // users: hash of the grant last applied (see request.fingerprint)
	State    string `json:"state,omitempty"`   // users: stateInactive after Cleanup deactivated the role
}

// stateInactive marks a user role Cleanup deactivated (NOLOGIN, no
// memberships, no privileges) because it still owns objects.
const stateInactive = "inactive"

// sameOwner reports whether r and o describe the same identity (SQL, Grant
// and State are state, not identity; Machine is informational: a node's
// machine can be renamed).
func (r ownerRecord) sameOwner(o ownerRecord) bool {
	r.SQL, o.SQL = "", ""
	r.Grant, o.Grant = "", ""
	r.State, o.State = "", ""
	r.Machine, o.Machine = "", ""
	return r == o
}

func (r ownerRecord) String() string {
	b, _ := json.Marshal(r) // cannot fail: only strings and ints
	return string(b)
}

// parseRecord parses a role comment; ok is false for a role that is not
// Waypoint's (no comment, other text, other version).
func parseRecord(comment string) (ownerRecord, bool) {
	var r ownerRecord
	if !strings.HasPrefix(comment, "{") || json.Unmarshal([]byte(comment), &r) != nil || r.Waypoint != 1 {
		return ownerRecord{}, false
	}
	return r, r.Kind == recordUser || r.Kind == recordGroup
}

// roleInfo is what the lookup found about one role name.
type roleInfo struct {
	record  ownerRecord
	ours    bool // record is a valid Waypoint owner record
	comment string
	// adminHas: the admin has the role's privileges (an inheriting member),
	// which it needs to grant on objects the role owns.
	adminHas bool
}

// resolveName picks the name for the role described by want, given the two
// candidate names and the roles found under them:
//
//  1. primary exists and is want's → primary;
//  2. alternate exists and is want's → alternate (an earlier clash);
//  3. primary is free → primary, to be created;
//  4. primary belongs to another Waypoint identity → alternate, created if
//     free; a clash error if taken by anyone else;
//  5. primary exists without an owner record → a clash error: Waypoint never
//     takes over a role it did not create.
func resolveName(primary, alternate string, want ownerRecord, found map[string]roleInfo) (name string, exists bool, err error) {
	p, pok := found[primary]
	a, aok := found[alternate]
	switch {
	case pok && p.ours && p.record.sameOwner(want):
		return primary, true, nil
	case aok && a.ours && a.record.sameOwner(want):
		return alternate, true, nil
	case !pok:
		return primary, false, nil
	case !p.ours:
		return "", false, &Error{Kind: Clash, Object: "role " + primary,
			Msg: "role exists and has no Waypoint owner record; refusing to take it over"}
	case !aok:
		return alternate, false, nil
	}
	return "", false, &Error{Kind: Clash, Object: "role " + alternate,
		Msg: "role name and its hashed alternative both belong to other identities"}
}
