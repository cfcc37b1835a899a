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
	// Preset is the single strongest preset granted (never zero in an
	// Effective returned by Decide).
	Preset Preset
	// Schemas are the schemas Preset applies to: sorted, deduplicated,
	// defaulting to ["public"].
	Schemas []string
	// SQL are the raw-SQL templates of the grant, in a stable order. Always
	// empty when PresetLimited is true.
	SQL []string
	// PresetLimited is true when the client asked for a lower maximum preset
	// for this connection; provisioning then uses a role scoped to Preset.
	PresetLimited bool
	// Limits are the merged limits, with defaults filled in.
	Limits Limits
}
