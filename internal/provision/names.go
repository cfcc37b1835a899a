package provision

import (
	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/provision/plan"
)

// The planner (package plan) explains plans; these keep the names cmd/waypoint
// uses from this package.

// ExplainOptions configures Explain; see plan.ExplainOptions.
type ExplainOptions = plan.ExplainOptions

// Explain returns the role and statements Ensure would use on an empty
// PostgreSQL backend, touching no database; see plan.Explain.
func Explain(opts ExplainOptions, peer identity.Peer, eff authz.Effective) (role string, statements []string, err error) {
	return plan.Explain(opts, peer, eff)
}
