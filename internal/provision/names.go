package provision

import (
	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// The planner (package plan) names roles and explains plans; these keep
// the names other packages use from this package.

// DefaultPrefix is the role-name prefix used when Options.Prefix is "".
const DefaultPrefix = plan.DefaultPrefix

// RoleName returns the role for peer on database; see plan.RoleName.
func RoleName(prefix string, peer identity.Peer, database string, preset authz.Preset) string {
	return plan.RoleName(prefix, peer, database, preset)
}

// ClashRoleName is the name a peer gets when RoleName is taken by another
// identity; see plan.ClashRoleName.
func ClashRoleName(prefix string, peer identity.Peer, database string, preset authz.Preset) string {
	return plan.ClashRoleName(prefix, peer, database, preset)
}

// UsersGroup is the NOLOGIN group every role Waypoint creates is a member
// of; see plan.UsersGroup.
func UsersGroup(prefix string) string { return plan.UsersGroup(prefix) }

// ExplainOptions configures Explain; see plan.ExplainOptions.
type ExplainOptions = plan.ExplainOptions

// Explain returns the role and statements Ensure would use on an empty
// PostgreSQL backend, touching no database; see plan.Explain.
func Explain(opts ExplainOptions, peer identity.Peer, eff authz.Effective) (role string, statements []string, err error) {
	return plan.Explain(opts, peer, eff)
}
