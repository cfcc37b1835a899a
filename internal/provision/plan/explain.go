package plan

import (
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
)

// DefaultPasswordLifetime is how long a password Ensure sets stays valid
// when the executor's Options.PasswordLifetime is zero.
const DefaultPasswordLifetime = 45 * time.Second

// ExplainOptions configures Explain. Zero values mean the same defaults as
// in the executor's Options.
type ExplainOptions struct {
	Prefix           string
	PasswordLifetime time.Duration
	// Now is the time VALID UNTIL is computed from; zero means time.Now().
	Now time.Time
}

// Explain returns the role Ensure would use for peer and eff on a
// PostgreSQL backend where neither the role nor its groups exist yet, and
// every statement it would run in the target database, in order (password shown as
// '<redacted>'). It touches no database. Errors are those Ensure would
// return before connecting (bad raw SQL, unknown preset).
func Explain(opts ExplainOptions, peer identity.Peer, eff authz.Effective) (role string, statements []string, err error) {
	prefix := OrDefault(opts.Prefix)
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
	req, err := NewRequest(prefix, peer, eff)
	if err != nil {
		return "", nil, err
	}
	pl, err := req.Plan(NewLookup(now), lifetime, UsersGroup(prefix), func(string) (string, error) { return "<redacted>", nil })
	if err != nil {
		return "", nil, err
	}
	steps, err := pl.Steps(PostgreSQL{})
	if err != nil {
		return "", nil, err
	}
	statements = append(statements, "BEGIN")
	for _, s := range steps {
		statements = append(statements, s.SQL)
	}
	return pl.Role, append(statements, "COMMIT"), nil
}
