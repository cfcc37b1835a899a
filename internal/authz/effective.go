package authz

import "time"

// Preset is a named bundle of privileges from the grant schema. The zero value
// means "no preset".
type Preset string

// The presets, weakest first. Strength order: Readonly < Readwrite < Admin.
const (
	Readonly  Preset = "readonly"
	Readwrite Preset = "readwrite"
	Admin     Preset = "admin"
)

// Limits bounds a caller's use of one listener. A zero field means unlimited.
type Limits struct {
	// MaxConns is the most concurrent connections one subject may hold.
	MaxConns int
	// MaxConnDuration is the longest a single session may last.
	MaxConnDuration time.Duration
	// MaxBytesPerConn is the most bytes (both directions) a session may relay.
	MaxBytesPerConn int64
}

// Effective is what a caller may do on one database of one listener, after all
// of the caller's grant objects were merged, the per-connection preset request
// applied and limits defaulted. It is the input of provisioning.
type Effective struct {
	// Listener and Database are the target the decision was made for.
	Listener string
	Database string
	// Preset is the strongest preset among Schemas (never zero in an
	// Effective returned by Decide). It names a preset-limited role and
	// appears in logs; what is granted on each schema is in Schemas.
	Preset Preset
	// Schemas are the granted schemas, sorted by name and unique, each with
	// its own preset: per schema, the strongest preset among the databases
	// entries that name it (an entry without "schemas" names "public").
	// Never empty in an Effective returned by Decide.
	Schemas []SchemaGrant
	// SQL are the raw-SQL templates of the grant, in a stable order. Always
	// empty when PresetLimited is true.
	SQL []string
	// PresetLimited is true when the client asked for a lower maximum preset
	// for this connection; provisioning then uses a role scoped to Preset.
	PresetLimited bool
	// Limits are the merged limits, with defaults filled in.
	Limits Limits
}

// SchemaGrant is the preset granted on one schema.
type SchemaGrant struct {
	Schema string
	Preset Preset
}

// SchemaGrants returns schemas, each with preset, in the given order: a
// convenience for a grant that is the same on every schema.
func SchemaGrants(preset Preset, schemas ...string) []SchemaGrant {
	out := make([]SchemaGrant, len(schemas))
	for i, s := range schemas {
		out[i] = SchemaGrant{Schema: s, Preset: preset}
	}
	return out
}

// SchemaNames returns the names of eff's schemas, in order.
func (eff Effective) SchemaNames() []string {
	out := make([]string, len(eff.Schemas))
	for i, s := range eff.Schemas {
		out[i] = s.Schema
	}
	return out
}
