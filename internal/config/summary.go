package config

import (
	"fmt"
	"slices"
	"strings"
)

// Summary returns one human-readable line per listener, for `waypoint
// check`, such as:
//
//	pg-main  postgres  listen :5432 → backend 10.0.1.10:5432  tls=optional(tailscale)  admin=waypoint_admin@postgres  prefix=wp_ ttl=24h0m0s
//
// followed, when they apply, by backend_tls=… (when not "prefer"),
// backend_auth=… (when not the default), service=… and raw_sql=on. It
// contains no secrets.
func (c *Config) Summary() []string {
	out := make([]string, 0, len(c.Listeners))
	for i := range c.Listeners {
		out = append(out, c.Listeners[i].summary(c.Provisioning.AllowRawSQL))
	}
	return out
}

func (l *Listener) summary(globalRawSQL bool) string {
	parts := []string{
		l.Name,
		string(l.Mode),
		fmt.Sprintf("listen %s → backend %s", l.Listen, l.Backend),
		"tls=" + l.tlsSummary(),
	}
	if p := l.Postgres; p != nil {
		parts = append(parts,
			fmt.Sprintf("admin=%s@%s", p.AdminUser, p.AdminDatabase),
			fmt.Sprintf("prefix=%s ttl=%s", p.UserPrefix, p.UserTTL))
		if p.BackendTLS != BackendTLSPrefer {
			parts = append(parts, "backend_tls="+string(p.BackendTLS))
		}
		if !slices.Equal(p.BackendAuth, DefaultBackendAuth()) {
			parts = append(parts, "backend_auth="+strings.Join(p.BackendAuth, ","))
		}
	}
	if l.Service != "" {
		parts = append(parts, "service="+l.Service)
	}
	if l.EffectiveAllowRawSQL(globalRawSQL) {
		parts = append(parts, "raw_sql=on")
	}
	return strings.Join(parts, "  ")
}

// tlsSummary is the TLS mode with its certificate sources, e.g.
// "optional(cert+tailscale)".
func (l *Listener) tlsSummary() string {
	if l.TLSMode == TLSOff {
		return string(l.TLSMode)
	}
	var src []string
	if l.CertFile != "" {
		src = append(src, "cert")
	}
	if l.UseTailscaleTLS {
		src = append(src, "tailscale")
	}
	return fmt.Sprintf("%s(%s)", l.TLSMode, strings.Join(src, "+"))
}
