// Package authz turns a caller's Tailscale capability grants into a decision
// for one connection: either the Effective privileges to provision, or a
// *Denial saying why not. It also reads the per-connection preset request
// ("waypoint_presets") from the Postgres startup parameters, and the caller's
// access to the operator console (Console) from the same grants.
//
// The package is pure: no I/O, no clocks, no globals that change; it imports
// only the standard library and internal/identity. All functions are safe for
// concurrent use.
//
// Grant objects arrive as raw JSON (identity.Peer.Caps) written by the
// tailnet admin; ParseGrants validates them completely, and Decide refuses a
// connection whose grant is malformed rather than guessing.
package authz
