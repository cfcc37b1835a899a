package plan

import (
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
)

// Request is one Ensure call's inputs, validated, with the candidate
// role names derived. It is immutable once built.
type Request struct {
	peer      identity.Peer
	eff       authz.Effective
	primary   string
	alternate string
	want      Record
	groups    []groupRequest
}

// groupRequest is one desired group with its two candidate names.
type groupRequest struct {
	schema, primary, alternate string
	preset                     authz.Preset
	record                     Record
}

// NewRequest validates the inputs and derives names. Its errors are
// *Error (MissingObject, Clash, BadSQL).
func NewRequest(prefix string, peer identity.Peer, eff authz.Effective) (*Request, error) {
	if eff.Database == "" {
		return nil, &Error{Kind: MissingObject, Object: "database", Msg: "no database in request"}
	}
	if len(eff.Database) > maxIdentLen {
		// PostgreSQL would silently truncate the name and connect to another
		// database: with a "*" grant every suffix would mint a new role.
		return nil, &Error{Kind: MissingObject, Object: "database " + strings.ToValidUTF8(eff.Database[:maxIdentLen], "") + "…",
			Msg: fmt.Sprintf("database name of %d bytes; PostgreSQL allows at most %d", len(eff.Database), maxIdentLen)}
	}
	if peer.Subject() == "" {
		return nil, &Error{Kind: Clash, Msg: "peer has no login name or tags"}
	}
	if _, err := privilegesOf(eff.Preset); err != nil {
		return nil, err
	}
	if len(eff.Schemas) == 0 {
		eff.Schemas = authz.SchemaGrants(eff.Preset, "public")
	}
	var namePreset authz.Preset
	if eff.PresetLimited {
		namePreset = eff.Preset
		eff.SQL = nil // raw SQL is skipped for a preset-limited connection
	}
	r := &Request{
		peer: peer, eff: eff,
		primary:   RoleName(prefix, peer, eff.Database, namePreset),
		alternate: ClashRoleName(prefix, peer, eff.Database, namePreset),
		want: Record{Waypoint: 1, Kind: RecordUser, Subject: peer.Subject(), Node: peer.NodeID,
			Machine: peer.MachineName, Database: eff.Database, Preset: string(namePreset)},
	}
	schemas := slices.Clone(eff.Schemas)
	slices.SortFunc(schemas, func(a, b authz.SchemaGrant) int { return strings.Compare(a.Schema, b.Schema) })
	for i, s := range schemas {
		if i > 0 && s.Schema == schemas[i-1].Schema {
			return nil, &Error{Kind: BadSQL, Object: "schema " + s.Schema, Msg: "schema listed twice in one decision"}
		}
		if _, err := privilegesOf(s.Preset); err != nil {
			return nil, err
		}
		r.groups = append(r.groups, groupRequest{
			schema:    s.Schema,
			preset:    s.Preset,
			primary:   GroupName(prefix, eff.Database, s.Schema, s.Preset),
			alternate: clashGroupName(prefix, eff.Database, s.Schema, s.Preset),
			record: Record{Waypoint: 1, Kind: RecordGroup, Database: eff.Database,
				Schema: s.Schema, Preset: string(s.Preset)},
		})
	}
	// Validate the raw SQL before anything runs, with the name most likely
	// to be used; Plan renders it again with the final name.
	if _, err := prepareSQL(eff.SQL, r.primary, eff.Database, peer.Subject()); err != nil {
		return nil, err
	}
	return r, nil
}

// Key identifies the role being provisioned within one process: callers
// with equal keys share a rotation.
func (r *Request) Key() string {
	return strings.Join([]string{r.want.Subject, r.want.Node, r.want.Database, r.want.Preset}, "\x00")
}

// Fingerprint identifies what the role should be granted; callers with the
// same key but a different fingerprint do not share a rotation.
func (r *Request) Fingerprint() string {
	parts := []string{string(r.eff.Preset)}
	for _, g := range r.groups {
		parts = append(parts, g.schema+"="+string(g.preset))
	}
	parts = append(parts, "\x01")
	parts = append(parts, r.eff.SQL...)
	return strings.Join(parts, "\x00")
}

// Schemas are the granted schemas, sorted.
func (r *Request) Schemas() []string {
	out := make([]string, len(r.groups))
	for i, g := range r.groups {
		out[i] = g.schema
	}
	return out
}

// LookupNames are the role names a Lookup must read.
func (r *Request) LookupNames() []string {
	names := []string{r.primary, r.alternate}
	for _, g := range r.groups {
		names = append(names, g.primary, g.alternate)
	}
	return names
}

// Plan decides what to change from the lookup. lifetime is how long the
// password stays valid (VALID UNTIL lk.Now+lifetime); users is the group
// every role joins (see UsersGroup); verifier computes the password hash
// for the final role name ("" keeps the password).
func (r *Request) Plan(lk *Lookup, lifetime time.Duration, users string, verifier func(role string) (string, error)) (*Plan, error) {
	name, exists, err := r.Existing(lk)
	if err != nil {
		return nil, err
	}
	raw, err := prepareSQL(r.eff.SQL, name, r.eff.Database, r.peer.Subject())
	if err != nil {
		return nil, err
	}
	pw, err := verifier(name)
	if err != nil {
		return nil, &Error{Kind: Backend, Msg: "hash password", Err: err}
	}
	rec := r.want
	rec.SQL = sqlHash(raw)
	rec.Grant = grantHash(r.Fingerprint())
	old := lk.Roles[name]
	pl := &Plan{
		Role: name, Database: r.eff.Database, CreateRole: !exists, Record: rec,
		SetComment:  !exists || old.Comment != rec.String(),
		AdminJoin:   !exists || !old.AdminHas,
		ResetDirect: exists && old.Record.SQL != "" && old.Record.SQL != rec.SQL,
		Password:    pw,
		ValidUntil:  TimestampLiteral(lk.Now.Add(lifetime)),
		RawSQL:      raw,
	}
	desired := map[string]bool{}
	for _, g := range r.groups {
		gname, gexists, err := ResolveName(g.primary, g.alternate, g.record, lk.Roles)
		if err != nil {
			return nil, err
		}
		desired[gname] = true
		pl.Groups = append(pl.Groups, GroupPlan{Name: gname, Schema: g.schema, Preset: g.preset, Create: !gexists, Record: g.record})
	}
	current := map[string]bool{}
	for _, m := range lk.Members[name] {
		current[m.Group] = true
		if m.Ours && !desired[m.Group] {
			pl.Leave = append(pl.Leave, m.Group)
		}
	}
	for _, g := range pl.Groups {
		if !current[g.Name] {
			pl.Join = append(pl.Join, g.Name)
		}
	}
	if users != "" && !current[users] {
		pl.Join = append(pl.Join, users)
	}
	slices.Sort(pl.Leave)
	return pl, nil
}

// String names the request for logs: subject@machine/database.
func (r *Request) String() string {
	return fmt.Sprintf("%s@%s/%s", r.want.Subject, r.peer.MachineName, r.eff.Database)
}

// Database is the database the role is for.
func (r *Request) Database() string { return r.eff.Database }

// HasRawSQL reports whether the grant has raw SQL templates (which a
// preset-limited connection never has).
func (r *Request) HasRawSQL() bool { return len(r.eff.SQL) > 0 }

// Candidates are the two names the user role may have: the primary name
// and its clash alternative. A role lock covers both.
func (r *Request) Candidates() []string { return []string{r.primary, r.alternate} }

// Existing resolves the role's name from lk: the name, and whether a role
// of that name is already this identity's (see ResolveName).
func (r *Request) Existing(lk *Lookup) (name string, exists bool, err error) {
	return ResolveName(r.primary, r.alternate, r.want, lk.Roles)
}
