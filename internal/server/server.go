// Package server runs Waypoint as `waypoint serve` does: it joins the
// tailnet as one node and serves every listener of a configuration (a
// proxy server with its provisioner, coordination store and audit log),
// the operator console and the metrics endpoint, and shuts them down in
// order. cmd/waypoint parses flags and handles signals; the demo embeds it.
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/waypoint-proxy/waypoint/internal/config"
	"github.com/waypoint-proxy/waypoint/internal/metrics"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
	"github.com/waypoint-proxy/waypoint/internal/tailnet"
)

// joinTimeout bounds joining the tailnet (registration, first network map).
const joinTimeout = 2 * time.Minute

// App is a running Waypoint: one tailnet node and a server per listener.
// Start returns it; Shutdown stops it.
type App struct {
	node      *tailnet.Node
	listeners []*listener
	metrics   *metrics.Metrics   // nil without [metrics]
	kicks     []chan struct{}    // one per listener: the tailnet policy changed
	refusals  *proxy.Refusals    // recent refusals of every listener, for the console
	console   *consoleRun        // nil without [console]
	cancel    context.CancelFunc // stops background loops (cleanup, revalidation, metrics, console)
	wg        sync.WaitGroup
}

// Start joins the tailnet and starts every listener, the console and the
// metrics endpoint that cfg configures. ctx bounds starting, not serving.
// On error everything started so far is stopped again.
func Start(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*App, error) {
	node, err := join(ctx, cfg, logger)
	if err != nil {
		return nil, err
	}
	bg, stopBG := context.WithCancel(context.Background())
	a := &App{node: node, cancel: stopBG, refusals: proxy.NewRefusals(0)}
	var reg *prometheus.Registry
	if cfg.Metrics != nil {
		reg = metrics.NewRegistry()
		a.metrics = metrics.New(reg)
	}
	for i := range cfg.Listeners {
		l, err := a.startListener(ctx, bg, cfg, &cfg.Listeners[i], logger)
		if err != nil {
			a.Shutdown(0)
			return nil, fmt.Errorf("listener %q: %w", cfg.Listeners[i].Name, err)
		}
		a.listeners = append(a.listeners, l)
	}
	a.watchPolicy(bg)
	if err := a.startConsole(bg, cfg, logger); err != nil {
		a.Shutdown(0)
		return nil, err
	}
	if cfg.Metrics != nil {
		if err := a.serveMetrics(bg, cfg.Metrics.Listen, reg, logger); err != nil {
			a.Shutdown(0)
			return nil, err
		}
	}
	v4, _ := node.Addrs()
	logger.Info("waypoint is serving", "hostname", cfg.Tailscale.Hostname, "tailnet_ip", v4.String(), "listeners", len(a.listeners))
	return a, nil
}

// join starts the tailnet node of cfg's [tailscale], within joinTimeout.
func join(ctx context.Context, cfg *config.Config, logger *slog.Logger) (*tailnet.Node, error) {
	upCtx, cancel := context.WithTimeout(ctx, joinTimeout)
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
	return node, nil
}

// Node is the app's tailnet node. It stays valid until Shutdown.
func (a *App) Node() *tailnet.Node { return a.node }

// ConsoleInstance is this instance's ID in the operator console (shown in
// its sessions), or "" without [console].
func (a *App) ConsoleInstance() string {
	if a.console == nil {
		return ""
	}
	return a.console.instance
}

// watchPolicy revalidates every listener's sessions as soon as the tailnet
// policy the node receives changes, not only on the interval.
func (a *App) watchPolicy(ctx context.Context) {
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

// serveMetrics serves /metrics, /healthz and /readyz on addr (not on the
// tailnet). Ready means the tailnet node is up and every admin can log in.
// It opens addr before it returns, so a port that cannot be bound fails
// Start instead of leaving a proxy whose /readyz never answers.
func (a *App) serveMetrics(ctx context.Context, addr string, reg *prometheus.Registry, logger *slog.Logger) error {
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
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", addr)
	if err != nil {
		return fmt.Errorf("metrics: listen on %s: %w", addr, err)
	}
	a.wg.Go(func() {
		if err := metrics.ServeListener(ctx, ln, metrics.Handler(reg, ready)); err != nil {
			logger.Error("metrics endpoint stopped", "addr", addr, "err", err)
		}
	})
	return nil
}

// Shutdown stops accepting on every listener, waits up to drain (<= 0: no
// limit) for open sessions, closes the rest (telling them 57P01), stops the
// background loops, closes every listener's resources and leaves the
// tailnet. It returns how many sessions were closed at the drain deadline.
// Call it once.
func (a *App) Shutdown(drain time.Duration) int {
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
		l.Close()
	}
	a.node.Close()
	return closed
}

// withTimeout is context.WithTimeout that treats d <= 0 as "no deadline".
func withTimeout(ctx context.Context, d time.Duration) (context.Context, context.CancelFunc) {
	if d <= 0 {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, d)
}
