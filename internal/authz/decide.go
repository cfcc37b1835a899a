package authz

import (
	"github.com/waypoint-proxy/waypoint/internal/identity"
)

// Wildcard is the databases key that matches every database.
const Wildcard = "*"

// defaultSchema is the schema a database entry without "schemas" applies to.
const defaultSchema = "public"

// Policy is the operator's configuration that shapes a decision.
type Policy struct {
	// DefaultLimits fill in every limit no grant sets. A zero field means
	// unlimited.
	DefaultLimits Limits
	// AllowRawSQL is whether grants with "sql" statements are accepted on
	// the listener, already resolved from the global and listener settings.
	AllowRawSQL bool
	// AdminDatabase is the listener's admin_database. A "*" databases entry
	// never matches it: only an entry that names it does. Waypoint's own
	// coordination lives there, out of reach of wildcard grants. "" means
	// no such exclusion.
	AdminDatabase string
}

// Request is what one connection asks for.
type Request struct {
	// Listener is the name of the listener the client connected to.
	Listener string
	// Database is the database named in the startup message.
	Database string
	// MaxPreset is the strongest preset the client accepts for this
	// connection (from PresetRequest); "" means no per-connection limit.
	MaxPreset Preset
}

// Decide decides whether peer may open req.Database on req.Listener and with
// which privileges. It returns the merged Effective grant, or a *Denial error
// saying why not. It is pure: it reads only its arguments.
//
// All of peer's grant objects are merged. For this listener, the databases
// entries for the exact database name and for "*" (except on
// pol.AdminDatabase) merge per schema (see mergeEntries); SQL templates are
// concatenated without duplicates in grant order. Limits come from every
// grant object, the strictest non-zero value winning; a limit no grant sets
// is taken from pol.DefaultLimits.
//
// With req.MaxPreset set, every schema's preset is lowered to at most
// req.MaxPreset (never raised), PresetLimited is set and raw SQL is dropped, so
// pol.AllowRawSQL does not matter.
func Decide(peer identity.Peer, req Request, pol Policy) (Effective, error) {
	if req.MaxPreset != "" && !req.MaxPreset.Valid() {
		return Effective{}, newDenial(BadPresetRequest, peer, req, "unknown preset "+quoteShort(string(req.MaxPreset)))
	}
	if len(peer.Caps) == 0 {
		return Effective{}, newDenial(NoGrant, peer, req, "")
	}
	grants, err := ParseGrants(peer.Caps)
	if err != nil {
		return Effective{}, newDenial(BadGrant, peer, req, err.Error())
	}
	if len(grants) == 0 {
		return Effective{}, newDenial(NoGrant, peer, req, "")
	}
	entries, listenerFound := matchDatabase(grants, req.Listener, req.Database, pol.AdminDatabase)
	switch {
	case !listenerFound:
		return Effective{}, newDenial(NoListener, peer, req, "")
	case len(entries) == 0:
		return Effective{}, newDenial(NoDatabase, peer, req, "")
	}
	eff := mergeEntries(entries)
	if eff.Preset == "" {
		return Effective{}, newDenial(NoPermissions, peer, req, "")
	}
	eff.Listener, eff.Database = req.Listener, req.Database
	eff.Limits = mergeLimits(grants, pol.DefaultLimits)
	if req.MaxPreset != "" {
		limitPreset(&eff, req.MaxPreset)
	}
	if len(eff.SQL) > 0 && !pol.AllowRawSQL {
		return Effective{}, newDenial(RawSQLNotAllowed, peer, req, "")
	}
	return eff, nil
}

// matchDatabase returns, in grant order, the databases entries of listener
// that apply to database: per grant object the exact entry, then the "*"
// entry (not for adminDB). listenerFound reports whether any grant object
// has a postgres grant for listener at all. An empty database matches
// nothing.
func matchDatabase(grants []Grant, listener, database, adminDB string) (entries []DatabaseGrant, listenerFound bool) {
	for _, g := range grants {
		pg := g.Backends[listener].PG
		if pg == nil {
			continue
		}
		listenerFound = true
		if database == "" {
			continue
		}
		if e, ok := pg.Databases[database]; ok {
			entries = append(entries, e)
		}
		if e, ok := pg.Databases[Wildcard]; ok && database != Wildcard && database != adminDB {
			entries = append(entries, e)
		}
	}
	return entries, listenerFound
}

// mergeEntries merges validated databases entries into an Effective with
// Preset, Schemas and SQL set, per schema: each schema an entry names (an
// entry without "schemas" names "public") gets the strongest preset among
// the entries that name it. Presets never spill from one entry's schemas
// to another's: {"*": admin on [scratch]} plus {"appdb": readonly on
// [public]} is admin on scratch and readonly on public, never admin on
// public. Preset (the strongest overall) stays "" when no entry has
// permissions; Schemas then is empty too.
func mergeEntries(entries []DatabaseGrant) Effective {
	var eff Effective
	perSchema := map[string]Preset{}
	seenSQL := map[string]bool{}
	for _, e := range entries {
		p := entryPreset(e)
		if p != "" {
			for _, s := range entrySchemas(e) {
				perSchema[s] = stronger(perSchema[s], p)
			}
			eff.Preset = stronger(eff.Preset, p)
		}
		for _, s := range e.SQL {
			if !seenSQL[s] {
				seenSQL[s] = true
				eff.SQL = append(eff.SQL, s)
			}
		}
	}
	for _, s := range sortedKeys(perSchema) {
		eff.Schemas = append(eff.Schemas, SchemaGrant{Schema: s, Preset: perSchema[s]})
	}
	return eff
}

// entryPreset is the strongest preset one databases entry names, or "".
func entryPreset(e DatabaseGrant) Preset {
	var out Preset
	for _, name := range e.Permissions {
		if p, err := ParsePreset(name); err == nil { // ParseGrants validated every name
			out = stronger(out, p)
		}
	}
	return out
}

// entrySchemas are the schemas one databases entry names, defaulting to
// public.
func entrySchemas(e DatabaseGrant) []string {
	if len(e.Schemas) == 0 {
		return []string{defaultSchema}
	}
	return e.Schemas
}

// limitPreset lowers every schema's preset, and eff.Preset, to at most max.
func limitPreset(eff *Effective, max Preset) {
	eff.Preset = weaker(eff.Preset, max)
	schemas := make([]SchemaGrant, len(eff.Schemas))
	for i, s := range eff.Schemas {
		schemas[i] = SchemaGrant{Schema: s.Schema, Preset: weaker(s.Preset, max)}
	}
	eff.Schemas = schemas
	eff.PresetLimited = true
	eff.SQL = nil
}

// mergeLimits returns, per field, the smallest non-zero value any grant sets,
// or the default when no grant sets one.
func mergeLimits(grants []Grant, defaults Limits) Limits {
	var l Limits
	for _, g := range grants {
		if g.Limits == nil {
			continue
		}
		l.MaxConns = strictest(l.MaxConns, g.Limits.MaxConns)
		l.MaxConnDuration = strictest(l.MaxConnDuration, g.Limits.MaxConnDuration)
		l.MaxBytesPerConn = strictest(l.MaxBytesPerConn, g.Limits.MaxBytesPerConn)
	}
	l.MaxConns = orDefault(l.MaxConns, defaults.MaxConns)
	l.MaxConnDuration = orDefault(l.MaxConnDuration, defaults.MaxConnDuration)
	l.MaxBytesPerConn = orDefault(l.MaxBytesPerConn, defaults.MaxBytesPerConn)
	return l
}

// strictest returns the smaller of two limits where zero means "not set".
func strictest[T ~int | ~int64](a, b T) T {
	switch {
	case a == 0:
		return b
	case b == 0:
		return a
	default:
		return min(a, b)
	}
}

// orDefault returns v, or def when v is zero.
func orDefault[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
