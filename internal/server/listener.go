package server

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"

	"github.com/waypoint-proxy/waypoint/internal/audit"
	"github.com/waypoint-proxy/waypoint/internal/config"
	"github.com/waypoint-proxy/waypoint/internal/coord"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/provision"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
)

// listener is one started listener: its proxy server, its provisioner and
// what they were built on.
type listener struct {
	name string
	prov *provision.Provisioner
	srv  *proxy.Server
	lns  []net.Listener // the tailnet port and, when configured, the Tailscale Service
	// acquired releases, newest first, everything build acquired.
	acquired stack
}

// Close releases everything the listener acquired, newest first: its
// network listeners (which the server's Shutdown has usually closed
// already), audit log, coordination store and provisioner. Shut the server
// down first. A second Close does nothing.
func (l *listener) Close() { l.acquired.unwind() }

// resources opens, one method per step, what a listener is built from, in
// the order build calls them. A method that opens something returns the
// function that releases it (nil when nothing needs releasing). live is the
// implementation serve uses; tests pass fakes.
type resources interface {
	security() (pgwire.BackendSecurity, error)
	provisioner(ctx context.Context, sec pgwire.BackendSecurity) (*provision.Provisioner, func(), error)
	clientTLS() (*tls.Config, error)
	coord(ctx context.Context) (coord.Store, func(), error)
	audit() (*audit.Logger, func(), error)
	server(p serverParts) (*proxy.Server, error)
	listen() (net.Listener, func(), error)
	listenService() (net.Listener, func(), error) // nil listener when none is configured
}

// serverParts are what the proxy server of a listener is made of.
type serverParts struct {
	sec   pgwire.BackendSecurity
	prov  *provision.Provisioner
	tls   *tls.Config
	coord coord.Store
	audit *audit.Logger
}

// build acquires a listener's resources from r, pushing each one's closer
// on a cleanup stack as soon as it is acquired. On error everything
// acquired so far is released, in reverse order, and nothing is left open;
// on success the stack is the listener's Close. build starts no serving
// goroutine (startListener does); resources may start their own
// background work (the audit writer, the Redis heartbeat, pool upkeep).
func build(ctx context.Context, name string, r resources) (_ *listener, err error) {
	l := &listener{name: name}
	defer func() {
		if err != nil {
			l.acquired.unwind()
		}
	}()
	var p serverParts
	var closer func()
	if p.sec, err = r.security(); err != nil {
		return nil, err
	}
	if p.prov, closer, err = r.provisioner(ctx, p.sec); err != nil {
		return nil, err
	}
	l.acquired.push(closer)
	if p.tls, err = r.clientTLS(); err != nil {
		return nil, err
	}
	if p.coord, closer, err = r.coord(ctx); err != nil {
		return nil, err
	}
	l.acquired.push(closer)
	if p.audit, closer, err = r.audit(); err != nil {
		return nil, err
	}
	l.acquired.push(closer)
	if l.srv, err = r.server(p); err != nil {
		return nil, err
	}
	for _, listen := range []func() (net.Listener, func(), error){r.listen, r.listenService} {
		var ln net.Listener
		if ln, closer, err = listen(); err != nil {
			return nil, err
		}
		l.acquired.push(closer)
		if ln != nil {
			l.lns = append(l.lns, ln)
		}
	}
	l.prov = p.prov
	return l, nil
}

// startListener builds the listener l of cfg and starts serving it: its
// accept loops, its revalidation (kicked when the tailnet policy changes)
// and its expired-role cleanup, all stopped by bg and Shutdown.
func (a *App) startListener(ctx, bg context.Context, cfg *config.Config, l *config.Listener, logger *slog.Logger) (*listener, error) {
	log := logger.With("listener", l.Name)
	rl, err := build(ctx, l.Name, &live{cfg: cfg, l: l, app: a, logger: logger})
	if err != nil {
		return nil, err
	}
	for _, ln := range rl.lns {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := rl.srv.Serve(ln); err != nil && !errors.Is(err, proxy.ErrServerClosed) {
				log.Error("listener stopped", "err", err)
			}
		}()
	}
	kick := make(chan struct{}, 1)
	a.kicks = append(a.kicks, kick)
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		rl.srv.RunRevalidation(bg, cfg.Revalidation.Interval, kick)
	}()
	go func() {
		defer a.wg.Done()
		rl.prov.RunCleanup(bg, l.Postgres.CleanupInterval, func(res provision.CleanupResult, _ error) {
			a.metrics.CleanupRun(l.Name, len(res.Dropped), len(res.Deactivated), len(res.SkippedActive), res.Errors)
		})
	}()
	log.Info("listening", "listen", l.Listen, "service", l.Service, "backend", l.Backend, "tls_mode", l.TLSMode)
	return rl, nil
}
