package server

import (
	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/config"
)

// ListenerPolicy is the authorization policy Waypoint applies on listener
// l of cfg: serve's proxy server and `waypoint explain` both use it.
func ListenerPolicy(cfg *config.Config, l *config.Listener) authz.Policy {
	return authz.Policy{
		DefaultLimits: authz.Limits{
			MaxConns:        cfg.Defaults.Limits.MaxConnsPerUser,
			MaxConnDuration: cfg.Defaults.Limits.MaxConnDuration,
			MaxBytesPerConn: cfg.Defaults.Limits.MaxBytesPerConn,
		},
		AllowRawSQL:   l.EffectiveAllowRawSQL(cfg.Provisioning.AllowRawSQL),
		AdminDatabase: l.Postgres.AdminDatabase,
	}
}
