package server

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/waypoint-proxy/waypoint/internal/audit"
	"github.com/waypoint-proxy/waypoint/internal/config"
	"github.com/waypoint-proxy/waypoint/internal/coord"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/provision"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
)

// live opens the real resources of listener l of cfg, on app's node.
type live struct {
	cfg    *config.Config
	l      *config.Listener
	app    *App
	logger *slog.Logger
}

func (r *live) security() (pgwire.BackendSecurity, error) { return backendSecurity(r.l) }

func (r *live) provisioner(ctx context.Context, sec pgwire.BackendSecurity) (*provision.Provisioner, func(), error) {
	opts := adminOptions(r.l, sec)
	opts.Prefix = r.l.Postgres.UserPrefix
	opts.TTL = r.l.Postgres.UserTTL
	opts.Logger = r.logger.With("listener", r.l.Name)
	prov, err := provision.New(ctx, opts)
	if err != nil {
		return nil, nil, fmt.Errorf("admin login to %s: %w", r.l.Backend, ExplainLoginError(err))
	}
	return prov, prov.Close, nil
}

func (r *live) clientTLS() (*tls.Config, error) { return clientTLS(r.l, r.app.node) }

// coord returns the listener's connection-limit and cancel-routing store:
// shared through Redis when [redis] is configured, else in memory.
func (r *live) coord(ctx context.Context) (coord.Store, func(), error) {
	if r.cfg.Redis == nil {
		store := coord.NewMemory()
		return store, func() { store.Close() }, nil
	}
	rc := r.cfg.Redis
	store, err := coord.NewRedis(ctx, coord.RedisOptions{
		Addr:      rc.Address,
		Password:  rc.Password,
		DB:        rc.DB,
		KeyPrefix: rc.KeyPrefix + r.l.Name + ":",
	})
	if err != nil {
		return nil, nil, fmt.Errorf("redis at %s: %w", rc.Address, err)
	}
	return store, func() { store.Close() }, nil
}

// audit opens the listener's statement audit log, or returns nil.
func (r *live) audit() (*audit.Logger, func(), error) {
	if r.l.AuditLog == "" {
		return nil, nil, nil
	}
	lg, err := audit.Open(r.l.AuditLog)
	if err != nil {
		return nil, nil, fmt.Errorf("audit_log: %w", err)
	}
	return lg, func() { lg.Close() }, nil
}

func (r *live) server(p serverParts) (*proxy.Server, error) {
	l := r.l
	return proxy.New(proxy.Options{
		Listener:         l.Name,
		Resolver:         r.app.node,
		Provisioner:      proxy.RoleProvisioner{Provisioner: p.prov},
		Backend:          backend(l, p.sec),
		Policy:           ListenerPolicy(r.cfg, l),
		TLSMode:          pgwire.TLSMode(l.TLSMode),
		TLSConfig:        p.tls,
		HandshakeTimeout: l.HandshakeTimeout,
		Logger:           r.logger,
		Metrics:          r.app.metrics,
		Coord:            p.coord,
		Audit:            p.audit,
		Spares: proxy.Spares{
			PerRole:     l.Postgres.SpareBackends,
			Max:         l.Postgres.MaxSpareBackends,
			IdleTimeout: l.Postgres.SpareIdleTimeout,
		},
		Refusals: r.app.refusals,
	})
}

// listen opens the listener's tailnet port.
func (r *live) listen() (net.Listener, func(), error) {
	ln, err := r.app.node.Listen("tcp", r.l.Listen)
	if err != nil {
		return nil, nil, fmt.Errorf("listen on the tailnet at %s: %w", r.l.Listen, err)
	}
	return ln, func() { ln.Close() }, nil
}

// listenService opens the listener's Tailscale Service, when configured.
func (r *live) listenService() (net.Listener, func(), error) {
	if r.l.Service == "" {
		return nil, nil, nil
	}
	_, portStr, _ := net.SplitHostPort(r.l.Listen)
	port, _ := strconv.ParseUint(portStr, 10, 16)
	svc, err := r.app.node.ListenService(r.l.Service, uint16(port))
	if err != nil {
		return nil, nil, err
	}
	return svc, func() { svc.Close() }, nil
}
