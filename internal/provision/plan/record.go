package plan

import (
	"encoding/json"
	"strings"
	"time"
)

// Kinds of owner record.
const (
	RecordUser  = "user"
	RecordGroup = "group"
)

// Record is the JSON comment (COMMENT ON ROLE) on every role Waypoint
// creates. A role without a parseable record with Waypoint == 1 is not
// Waypoint's and is never altered, granted to or dropped.
type Record struct {
	Waypoint int    `json:"waypoint"`          // format version, 1
	Kind     string `json:"kind"`              // RecordUser or RecordGroup
	Subject  string `json:"subject,omitempty"` // identity.Peer.Subject (users)
	Node     string `json:"node,omitempty"`    // identity.Peer.NodeID (users)
	Machine  string `json:"machine,omitempty"` // identity.Peer.MachineName (users); informational
	Database string `json:"db"`                // the database the role is for
	Schema   string `json:"schema,omitempty"`  // groups: the schema
	Preset   string `json:"preset,omitempty"`  // groups; users only when preset-limited
	SQL      string `json:"sql,omitempty"`     // users: hash of the raw SQL last applied
	Grant    string `json:"grant,omitempty"`   // users: hash of the grant last applied (see request.fingerprint)
	State    string `json:"state,omitempty"`   // users: StateInactive after Cleanup deactivated the role
}

// StateInactive marks a user role Cleanup deactivated (NOLOGIN, no
// memberships, no privileges) because it still owns objects.
const StateInactive = "inactive"

// SameOwner reports whether r and o describe the same identity (SQL, Grant
// and State are state, not identity; Machine is informational: a node's
// machine can be renamed).
func (r Record) SameOwner(o Record) bool {
	r.SQL, o.SQL = "", ""
	r.Grant, o.Grant = "", ""
	r.State, o.State = "", ""
	r.Machine, o.Machine = "", ""
	return r == o
}

func (r Record) String() string {
	b, _ := json.Marshal(r) // cannot fail: only strings and ints
	return string(b)
}

// ParseRecord parses a role comment; ok is false for a role that is not
// Waypoint's (no comment, other text, other version).
func ParseRecord(comment string) (Record, bool) {
	var r Record
	if !strings.HasPrefix(comment, "{") || json.Unmarshal([]byte(comment), &r) != nil || r.Waypoint != 1 {
		return Record{}, false
	}
	return r, r.Kind == RecordUser || r.Kind == RecordGroup
}

// RoleInfo is what the lookup found about one role name.
type RoleInfo struct {
	Record  Record
	Ours    bool   // Record is a valid Waypoint owner record
	Comment string // the owner record as stored (a role comment or a record row)
	// AdminHas: the admin has the role's privileges (an inheriting member),
	// which it needs to grant on objects the role owns.
	AdminHas bool
}

// NewRoleInfo is the RoleInfo of a role whose stored owner record is
// comment ("" when it has none).
func NewRoleInfo(comment string, adminHas bool) RoleInfo {
	rec, ours := ParseRecord(comment)
	return RoleInfo{Record: rec, Ours: ours, Comment: comment, AdminHas: adminHas}
}

// Lookup is what the admin database says about the candidate role names
// of a Request (see Request.LookupNames): the input of Request.Plan.
type Lookup struct {
	Now     time.Time               // the server's clock
	Roles   map[string]RoleInfo     // existing roles among the names asked for
	Members map[string][]Membership // member role → groups it belongs to
}

// NewLookup returns an empty Lookup at now: no role exists.
func NewLookup(now time.Time) *Lookup {
	return &Lookup{Now: now, Roles: map[string]RoleInfo{}, Members: map[string][]Membership{}}
}

// Membership is one group a role is a member of.
type Membership struct {
	Group string
	Ours  bool // the group has a Waypoint group record
}

// ResolveName picks the name for the role described by want, given the two
// candidate names and the roles found under them:
//
//  1. primary exists and is want's → primary;
//  2. alternate exists and is want's → alternate (an earlier clash);
//  3. primary is free → primary, to be created;
//  4. primary belongs to another Waypoint identity → alternate, created if
//     free; a clash error if taken by anyone else;
//  5. primary exists without an owner record → a clash error: Waypoint never
//     takes over a role it did not create.
func ResolveName(primary, alternate string, want Record, found map[string]RoleInfo) (name string, exists bool, err error) {
	p, pok := found[primary]
	a, aok := found[alternate]
	switch {
	case pok && p.Ours && p.Record.SameOwner(want):
		return primary, true, nil
	case aok && a.Ours && a.Record.SameOwner(want):
		return alternate, true, nil
	case !pok:
		return primary, false, nil
	case !p.Ours:
		return "", false, &Error{Kind: Clash, Object: "role " + primary,
			Msg: "role exists and has no Waypoint owner record; refusing to take it over"}
	case !aok:
		return alternate, false, nil
	}
	return "", false, &Error{Kind: Clash, Object: "role " + alternate,
		Msg: "role name and its hashed alternative both belong to other identities"}
}
