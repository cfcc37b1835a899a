package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"

	"net"
	"net/url"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waypoint-proxy/waypoint/internal/audit"
	"github.com/waypoint-proxy/waypoint/internal/certs"
	"github.com/waypoint-proxy/waypoint/internal/config"
	"github.com/waypoint-proxy/waypoint/internal/coord"
	"github.com/waypoint-proxy/waypoint/internal/metrics"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/provision"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
	"github.com/waypoint-proxy/waypoint/internal/tailnet"
)

// app is a running Waypoint: one tailnet node and a server per listener.
type app struct {
	node      *tailnet.Node
	listeners []*runningListener
	metrics   *metrics.Metrics   // nil without [metrics]
	kicks     []chan struct{}    // one per listener: the tailnet policy changed
	refusals  *proxy.Refusals    // recent refusals of every listener, for the console
	console   *consoleRun        // nil without [console]
	cancel    context.CancelFunc // stops background loops (cleanup, revalidation, metrics, console)
	wg        sync.WaitGroup
}

type runningListener struct {
	name  string
	srv   *proxy.Server
	prov  *provision.Provisioner
	coord coord.Store
	audit *audit.Logger
}

// startApp joins the tailnet and starts every listener. On error everything
// started so far is stopped again.
func startApp(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*app, error) {
	upCtx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	node, err := tailnet.Start(upCtx, tailnet.Options{
		Hostname:      cfg.Tailscale.Hostname,
		Dir:           cfg.Tailscale.StateDir,
		AuthKey:       cfg.Tailscale.AuthKey,
		ControlURL:    cfg.Tailscale.ControlURL,
		Ephemeral:     cfg.Tailscale.Ephemeral,
		AdvertiseTags: cfg.Tailscale.AdvertiseTags,
		Capability:    cfg.Tailscale.Capability,
		UserLogf:      func(f string, a ...any) { logger.Info(fmt.Sprintf(f, a...), "component", "tailscale") },
	})
	if err != nil {
		return nil, fmt.Errorf("join tailnet as %q: %w", cfg.Tailscale.Hostname, err)
	}
	bg, stopBG := context.WithCancel(context.Background())
	a := &app{node: node, cancel: stopBG, refusals: proxy.NewRefusals(0)}
	var reg *prometheus.Registry
	if cfg.Metrics != nil {
		reg = metrics.NewRegistry()
		a.metrics = metrics.New(reg)
	}
	for i := range cfg.Listeners {
		l, err := a.startListener(ctx, bg, cfg, &cfg.Listeners[i], logger)
		if err != nil {
			a.shutdown(0)
			return nil, fmt.Errorf("listener %q: %w", cfg.Listeners[i].Name, err)
		}
		a.listeners = append(a.listeners, l)
	}
	a.watchPolicy(bg)
	if err := a.startConsole(bg, cfg, logger); err != nil {
		a.shutdown(0)
		return nil, err
	}
	if cfg.Metrics != nil {
		a.serveMetrics(bg, cfg.Metrics.Listen, reg, logger)
	}
	v4, _ := node.Addrs()
	logger.Info("waypoint is serving", "hostname", cfg.Tailscale.Hostname, "tailnet_ip", v4.String(), "listeners", len(a.listeners))
	return a, nil
}

func (a *app) startListener(ctx, bg context.Context, cfg *config.Config, l *config.Listener, logger *slog.Logger) (*runningListener, error) {
	log := logger.With("listener", l.Name)
	connString, err := adminConnString(l)
	if err != nil {
		return nil, err
	}
	prov, err := provision.New(ctx, provision.Options{
		AdminConnString: connString,
		Prefix:          l.Postgres.UserPrefix,
		TTL:             l.Postgres.UserTTL,
		Logger:          log,
	})
	if err != nil {
		return nil, fmt.Errorf("admin login to %s: %w", l.Backend, explainLoginError(err))
	}
	tlsConfig, err := clientTLS(l, a.node)
	if err != nil {
		prov.Close()
		return nil, err
	}
	backendCAs, err := loadCAs(l.Postgres.BackendCAFile)
	if err != nil {
		prov.Close()
		return nil, err
	}
	store, err := newCoord(ctx, cfg, l)
	if err != nil {
		prov.Close()
		return nil, err
	}
	auditLog, err := openAudit(l)
	if err != nil {
		prov.Close()
		store.Close()
		return nil, err
	}
	rl := &runningListener{name: l.Name, prov: prov, coord: store, audit: auditLog}
	srv, err := proxy.New(proxy.Options{
		Listener:    l.Name,
		Resolver:    a.node,
		Provisioner: proxy.RoleProvisioner{Provisioner: prov},
		Backend: proxy.Backend{
			Addr:    l.Backend,
			TLS:     string(l.Postgres.BackendTLS),
			RootCAs: backendCAs,
			Auth:    l.Postgres.BackendAuth,
		},
		Policy:           listenerPolicy(cfg, l),
		TLSMode:          pgwire.TLSMode(l.TLSMode),
		TLSConfig:        tlsConfig,
		HandshakeTimeout: l.HandshakeTimeout,
		Logger:           logger,
		Metrics:          a.metrics,
		Coord:            store,
		Audit:            auditLog,
		Spares: proxy.Spares{
			PerRole:     l.Postgres.SpareBackends,
			Max:         l.Postgres.MaxSpareBackends,
			IdleTimeout: l.Postgres.SpareIdleTimeout,
		},
		Refusals: a.refusals,
	})
	if err != nil {
		rl.close()
		return nil, err
	}
	rl.srv = srv
	lns, err := a.listen(l)
	if err != nil {
		rl.close()
		return nil, err
	}
	for _, ln := range lns {
		a.wg.Add(1)
		go func() {
			defer a.wg.Done()
			if err := srv.Serve(ln); err != nil && !errors.Is(err, proxy.ErrServerClosed) {
				log.Error("listener stopped", "err", err)
			}
		}()
	}
	kick := make(chan struct{}, 1)
	a.kicks = append(a.kicks, kick)
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		srv.RunRevalidation(bg, cfg.Revalidation.Interval, kick)
	}()
	go func() {
		defer a.wg.Done()
		a.runCleanup(bg, l.Name, prov, l.Postgres.CleanupInterval, log)
	}()
	log.Info("listening", "listen", l.Listen, "service", l.Service, "backend", l.Backend, "tls_mode", l.TLSMode)
	return rl, nil
}

// listen opens the listener's tailnet port and, when configured, its
// Tailscale Service.
func (a *app) listen(l *config.Listener) ([]net.Listener, error) {
	ln, err := a.node.Listen("tcp", l.Listen)
	if err != nil {
		return nil, fmt.Errorf("listen on the tailnet at %s: %w", l.Listen, err)
	}
	if l.Service == "" {
		return []net.Listener{ln}, nil
	}
	_, portStr, _ := net.SplitHostPort(l.Listen)
	port, _ := strconv.ParseUint(portStr, 10, 16)
	svc, err := a.node.ListenService(l.Service, uint16(port))
	if err != nil {
		ln.Close()
		return nil, err
	}
	return []net.Listener{ln, svc}, nil
}

// close releases what startListener acquired, for a listener that failed to
// start or has stopped serving.
func (rl *runningListener) close() {
	rl.prov.Close()
	rl.coord.Close()
	rl.audit.Close()
}

// newCoord returns the listener's connection-limit and cancel-routing store:
// shared through Redis when [redis] is configured, else in memory.
func newCoord(ctx context.Context, cfg *config.Config, l *config.Listener) (coord.Store, error) {
	if cfg.Redis == nil {
		return coord.NewMemory(), nil
	}
	store, err := coord.NewRedis(ctx, coord.RedisOptions{
		Addr:      cfg.Redis.Address,
		Password:  cfg.Redis.Password,
		DB:        cfg.Redis.DB,
		KeyPrefix: cfg.Redis.KeyPrefix + l.Name + ":",
	})
	if err != nil {
		return nil, fmt.Errorf("redis at %s: %w", cfg.Redis.Address, err)
	}
	return store, nil
}

// openAudit opens the listener's statement audit log, or returns nil.
func openAudit(l *config.Listener) (*audit.Logger, error) {
	if l.AuditLog == "" {
		return nil, nil
	}
	lg, err := audit.Open(l.AuditLog)
	if err != nil {
		return nil, fmt.Errorf("audit_log: %w", err)
	}
	return lg, nil
}

// watchPolicy revalidates every listener's sessions as soon as the tailnet
// policy the node receives changes, not only on the interval.
func (a *app) watchPolicy(ctx context.Context) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		a.node.WatchPolicy(ctx, func() {
			for _, k := range a.kicks {
				select {
				case k <- struct{}{}:
				default: // a pass is already pending
				}
			}
		})
	}()
}

// runCleanup drops expired roles every interval and records the outcome.
func (a *app) runCleanup(ctx context.Context, name string, prov *provision.Provisioner, interval time.Duration, log *slog.Logger) {
	if interval <= 0 {
		return
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cctx, cancel := context.WithTimeout(ctx, interval)
		res, err := prov.Cleanup(cctx)
		cancel()
		a.metrics.CleanupRun(name, len(res.Dropped), len(res.Deactivated), len(res.SkippedActive), res.Errors)
		if err != nil {
			log.Warn("cleanup failed", "err", err)
		} else if len(res.Dropped)+len(res.Deactivated) > 0 || res.Errors > 0 {
			log.Info("cleanup", "dropped", len(res.Dropped), "deactivated", len(res.Deactivated),
				"kept_in_use", len(res.SkippedActive), "errors", res.Errors)
		}
	}
}

// serveMetrics serves /metrics, /healthz and /readyz on addr (not on the
// tailnet). Ready means the tailnet node is up and every admin can log in.
func (a *app) serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, logger *slog.Logger) {
	ready := func(ctx context.Context) error {
		if v4, _ := a.node.Addrs(); !v4.IsValid() {
			return errors.New("tailnet node has no address yet")
		}
		for _, l := range a.listeners {
			if err := l.prov.Ping(ctx); err != nil {
				return fmt.Errorf("listener %s: %w", l.name, err)
			}
		}
		return nil
	}
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := metrics.Serve(ctx, addr, metrics.Handler(reg, ready)); err != nil {
			logger.Error("metrics endpoint stopped", "addr", addr, "err", err)
		}
	}()
}

// shutdown stops accepting on every listener, waits up to drain for open
// sessions, closes the rest (telling them 57P01) and leaves the tailnet. It
// returns how many sessions were closed at the drain deadline.
func (a *app) shutdown(drain time.Duration) int {
	ctx, cancel := withTimeout(context.Background(), drain)
	defer cancel()
	var mu sync.Mutex
	closed := 0
	var wg sync.WaitGroup
	for _, l := range a.listeners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := l.srv.Shutdown(ctx)
			mu.Lock()
			closed += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	a.cancel()
	a.wg.Wait()
	a.console.close()
	for _, l := range a.listeners {
		l.close()
	}
	a.node.Close()
	return closed
}

// adminConnString is the libpq URL of the listener's admin login. It is built
// with net/url so that passwords and names with special characters survive.
// It carries the listener's backend_tls, backend_ca_file and backend_auth
// as sslmode, sslrootcert and require_auth, the same settings role logins
// get through proxy.Backend (require_auth from the same
// pgwire.RequireAuthParam), and channel_binding=prefer: SCRAM-SHA-256-PLUS
// whenever TLS is on and the server offers it. Parameters in the URL win
// over PG* environment variables, so PGREQUIREAUTH cannot loosen them.
func adminConnString(l *config.Listener) (string, error) {
	pg := l.Postgres
	u := url.URL{
		Scheme: "postgres",
		Host:   l.Backend,
		Path:   "/" + pg.AdminDatabase,
	}
	if pg.AdminPassword != "" {
		u.User = url.UserPassword(pg.AdminUser, pg.AdminPassword)
	} else {
		u.User = url.User(pg.AdminUser)
	}
	requireAuth, err := pgwire.RequireAuthParam(pg.BackendAuth)
	if err != nil {
		return "", fmt.Errorf("backend_auth: %w", err)
	}
	q := url.Values{}
	q.Set("sslmode", string(pg.BackendTLS))
	if pg.BackendCAFile != "" {
		q.Set("sslrootcert", pg.BackendCAFile)
	}
	q.Set("require_auth", requireAuth)
	q.Set("channel_binding", "prefer")
	q.Set("application_name", "waypoint-admin")
	u.RawQuery = q.Encode()
	return u.String(), nil
}

// explainLoginError returns, for an admin login abandoned because the
// backend asked for a method backend_auth does not allow, the
// *pgwire.AuthMethodError that says so and what to change; err otherwise.
func explainLoginError(err error) error {
	if ae, ok := pgwire.AuthMethodRefused(err); ok {
		return ae
	}
	return err
}

// clientTLS builds the TLS configuration clients see, or nil when the
// listener serves no TLS.
func clientTLS(l *config.Listener, node *tailnet.Node) (*tls.Config, error) {
	if l.TLSMode == config.TLSOff {
		return nil, nil
	}
	sel := &certs.Selector{}
	if l.CertFile != "" {
		cert, err := certs.LoadFile(l.CertFile, l.KeyFile)
		if err != nil {
			return nil, err
		}
		sel.File = cert
	}
	if l.UseTailscaleTLS {
		sel.Tailscale = func(domain string) (*tls.Certificate, error) {
			return node.GetCertificate(&tls.ClientHelloInfo{ServerName: domain})
		}
		sel.TailscaleDomains = node.CertDomains
	}
	if sel.File == nil && sel.Tailscale == nil {
		return nil, nil
	}
	return sel.TLSConfig(), nil
}

func loadCAs(path string) (*x509.CertPool, error) {
	if path == "" {
		return nil, nil
	}
	pem, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("backend_ca_file: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil, fmt.Errorf("backend_ca_file %s: no PEM certificates found", path)
	}
	return pool, nil
}
