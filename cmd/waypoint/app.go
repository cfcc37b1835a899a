package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"

	"net/url"
	"os"
	"sync"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/certs"
	"github.com/waypoint-proxy/waypoint/internal/config"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/provision"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
	"github.com/waypoint-proxy/waypoint/internal/tailnet"
)

// app is a running Waypoint: one tailnet node and a server per listener.
type app struct {
	node      *tailnet.Node
	listeners []*runningListener
	cancel    context.CancelFunc // stops background loops (cleanup)
	wg        sync.WaitGroup
}

type runningListener struct {
	name string
	srv  *proxy.Server
	prov *provision.Provisioner
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
	a := &app{node: node, cancel: stopBG}
	for i := range cfg.Listeners {
		l, err := a.startListener(ctx, bg, cfg, &cfg.Listeners[i], logger)
		if err != nil {
			a.shutdown(0)
			return nil, fmt.Errorf("listener %q: %w", cfg.Listeners[i].Name, err)
		}
		a.listeners = append(a.listeners, l)
	}
	v4, _ := node.Addrs()
	logger.Info("waypoint is serving", "hostname", cfg.Tailscale.Hostname, "tailnet_ip", v4.String(), "listeners", len(a.listeners))
	return a, nil
}

func (a *app) startListener(ctx, bg context.Context, cfg *config.Config, l *config.Listener, logger *slog.Logger) (*runningListener, error) {
	log := logger.With("listener", l.Name)
	prov, err := provision.New(ctx, provision.Options{
		AdminConnString: adminConnString(l),
		Prefix:          l.Postgres.UserPrefix,
		TTL:             l.Postgres.UserTTL,
		Logger:          log,
	})
	if err != nil {
		return nil, fmt.Errorf("admin login to %s: %w", l.Backend, err)
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
	srv, err := proxy.New(proxy.Options{
		Listener:    l.Name,
		Resolver:    a.node,
		Provisioner: prov,
		Backend: proxy.Backend{
			Addr:    l.Backend,
			TLS:     string(l.Postgres.BackendTLS),
			RootCAs: backendCAs,
		},
		Policy: authz.Policy{
			DefaultLimits: authz.Limits{
				MaxConns:        cfg.Defaults.Limits.MaxConnsPerUser,
				MaxConnDuration: cfg.Defaults.Limits.MaxConnDuration,
				MaxBytesPerConn: cfg.Defaults.Limits.MaxBytesPerConn,
			},
			AllowRawSQL: l.EffectiveAllowRawSQL(cfg.Provisioning.AllowRawSQL),
		},
		TLSMode:          pgwire.TLSMode(l.TLSMode),
		TLSConfig:        tlsConfig,
		HandshakeTimeout: l.HandshakeTimeout,
		Logger:           logger,
	})
	if err != nil {
		prov.Close()
		return nil, err
	}
	ln, err := a.node.Listen("tcp", l.Listen)
	if err != nil {
		prov.Close()
		return nil, fmt.Errorf("listen on the tailnet at %s: %w", l.Listen, err)
	}
	a.wg.Add(2)
	go func() {
		defer a.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, proxy.ErrServerClosed) {
			log.Error("listener stopped", "err", err)
		}
	}()
	go func() {
		defer a.wg.Done()
		prov.RunCleanup(bg, l.Postgres.CleanupInterval)
	}()
	log.Info("listening", "listen", l.Listen, "backend", l.Backend, "tls_mode", l.TLSMode)
	return &runningListener{name: l.Name, srv: srv, prov: prov}, nil
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
	for _, l := range a.listeners {
		l.prov.Close()
	}
	a.node.Close()
	return closed
}

// adminConnString is the libpq URL of the listener's admin login. It is built
// with net/url so that passwords and names with special characters survive.
func adminConnString(l *config.Listener) string {
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
	q := url.Values{}
	q.Set("sslmode", string(pg.BackendTLS))
	if pg.BackendCAFile != "" {
		q.Set("sslrootcert", pg.BackendCAFile)
	}
	q.Set("application_name", "waypoint-admin")
	u.RawQuery = q.Encode()
	return u.String()
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
