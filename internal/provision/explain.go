package provision

import (
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
)

// ExplainOptions configures Explain. Zero values mean the same defaults as
// in Options.
type ExplainOptions struct {
	Prefix           string
	PasswordLifetime time.Duration
	// Now is the time VALID UNTIL is computed from; zero means time.Now().
	Now time.Time
}

// Explain returns the role Ensure would use for peer and eff on a backend
// where neither the role nor its groups exist yet, and every statement it
// would run in the target database, in order (password shown as
// '<redacted>'). It touches no database. Errors are those Ensure would
// return before connecting (bad raw SQL, unknown preset).
func Explain(opts ExplainOptions, peer identity.Peer, eff authz.Effective) (role string, statements []string, err error) {
	prefix := orDefault(opts.Prefix)
	if err := ValidatePrefix(prefix); err != nil {
		return "", nil, err
	}
	lifetime := opts.PasswordLifetime
	if lifetime == 0 {
		lifetime = DefaultPasswordLifetime
	}
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	req, err := newRequest(prefix, peer, eff)
	if err != nil {
		return "", nil, err
	}
	lk := &lookup{Now: now, Roles: map[string]roleInfo{}, Members: map[string][]membership{}}
	pl, err := req.buildPlan(lk, lifetime, UsersGroup(prefix), func(string) (string, error) { return "<redacted>", nil })
	if err != nil {
		return "", nil, err
	}
	steps, err := pl.steps()
	if err != nil {
		return "", nil, err
	}
	statements = append(statements, "BEGIN")
	for _, s := range steps {
		statements = append(statements, s.SQL)
	}
	return pl.Role, append(statements, "COMMIT"), nil
}
