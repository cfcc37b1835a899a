package server

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/config"
	"github.com/waypoint-proxy/waypoint/internal/console"
	"github.com/waypoint-proxy/waypoint/internal/coord"
)

// consoleRun is the running operator console: its faces are served by
// goroutines of the app (stopped with its background context); the fleet
// registration is closed by close.
type consoleRun struct {
	instance string       // this instance's ID in the console
	fleet    *coord.Fleet // nil without [redis]
}

// close leaves the fleet. A nil *consoleRun (no [console]) does nothing.
func (c *consoleRun) close() {
	if c != nil && c.fleet != nil {
		c.fleet.Close()
	}
}

// startConsole serves [console] when configured: the tailnet face on
// Waypoint's own node, authorized by WhoIs and the caller's grant, and the
// loopback face, authorized by the token file. With [redis] it joins the
// fleet of instances sharing it, so every instance's sessions are shown.
func (a *App) startConsole(ctx context.Context, cfg *config.Config, logger *slog.Logger) error {
	cc := cfg.Console
	if cc == nil {
		return nil
	}
	log := logger.With("component", "console")
	hub, run, err := a.newHub(ctx, cfg, log)
	if err != nil {
		return err
	}
	a.console = run
	if cc.Listen != "" {
		if err := a.serveConsoleTailnet(ctx, cfg, hub, log); err != nil {
			return err
		}
	}
	if cc.Local != "" {
		if err := a.serveConsoleLocal(ctx, cc, hub, cfg.Tailscale.Hostname, log); err != nil {
			return err
		}
	}
	return nil
}

// newHub builds the console's view of this instance and, with [redis],
// of the fleet.
func (a *App) newHub(ctx context.Context, cfg *config.Config, log *slog.Logger) (*console.Hub, *consoleRun, error) {
	servers := make([]console.Server, 0, len(a.listeners))
	for _, l := range a.listeners {
		servers = append(servers, l.srv)
	}
	opts := console.HubOptions{Servers: servers, Refusals: a.refusals, Logger: log,
		Instance: coord.Member{ID: rand.Text(), Hostname: cfg.Tailscale.Hostname}}
	run := &consoleRun{instance: opts.Instance.ID}
	if cfg.Redis != nil {
		fleet, err := coord.NewFleet(ctx, coord.FleetOptions{
			Addr: cfg.Redis.Address, Password: cfg.Redis.Password, DB: cfg.Redis.DB, KeyPrefix: cfg.Redis.KeyPrefix,
			Hostname: cfg.Tailscale.Hostname,
			OnError:  func(err error) { log.Warn("fleet", "err", err) },
		})
		if err != nil {
			return nil, nil, fmt.Errorf("console: join the instances sharing redis at %s: %w", cfg.Redis.Address, err)
		}
		opts.Fleet, run.fleet, run.instance = fleet, fleet, fleet.Self().ID
	}
	hub, err := console.NewHub(opts)
	if err != nil {
		run.close()
		return nil, nil, err
	}
	return hub, run, nil
}

// serveConsoleTailnet serves the console on the tailnet port, answering to
// the node's names and its addresses.
func (a *App) serveConsoleTailnet(ctx context.Context, cfg *config.Config, hub *console.Hub, log *slog.Logger) error {
	hosts := []string{cfg.Tailscale.Hostname}
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	if name := a.node.DNSName(dctx); name != "" {
		hosts = append(hosts, name)
	}
	cancel()
	h, err := console.Handler(console.Options{
		Source:     hub,
		Authorizer: console.Tailnet{Resolver: a.node, Capability: cfg.Tailscale.Capability},
		Hosts:      hosts,
		Title:      cfg.Tailscale.Hostname,
		Logger:     log,
	})
	if err != nil {
		return err
	}
	ln, err := a.node.Listen("tcp", cfg.Console.Listen)
	if err != nil {
		return fmt.Errorf("console: listen on the tailnet at %s: %w", cfg.Console.Listen, err)
	}
	a.serveHTTP(ctx, ln, h, log)
	log.Info("console on the tailnet", "listen", cfg.Console.Listen, "hosts", strings.Join(hosts, ","))
	return nil
}

// serveConsoleLocal serves the console on loopback, for whoever holds the
// token in local_token_file.
func (a *App) serveConsoleLocal(ctx context.Context, cc *config.Console, hub *console.Hub, title string, log *slog.Logger) error {
	token, err := consoleToken(cc.LocalTokenFile)
	if err != nil {
		return err
	}
	h, err := console.Handler(console.Options{
		Source: hub, Authorizer: console.Token{Token: token},
		Hosts: []string{"localhost"}, Title: title, Logger: log,
	})
	if err != nil {
		return err
	}
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cc.Local)
	if err != nil {
		return fmt.Errorf("console: listen on %s: %w", cc.Local, err)
	}
	a.serveHTTP(ctx, ln, h, log)
	log.Info("console on loopback", "local", ln.Addr().String(), "token_file", cc.LocalTokenFile)
	return nil
}

// serveHTTP serves h on ln until ctx is done.
func (a *App) serveHTTP(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) {
	a.wg.Add(1)
	go func() {
		defer a.wg.Done()
		if err := console.Serve(ctx, ln, h); err != nil {
			log.Error("console stopped", "err", err)
		}
	}()
}

// consoleToken returns the loopback face's token from path, creating the
// file with a random token (mode 0600) when it does not exist. A file that
// group or others may read, or that holds a short token, is refused: the
// token is all that stands between a local user and terminating sessions.
func consoleToken(path string) (string, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err == nil {
		token := rand.Text()
		_, werr := f.WriteString(token + "\n")
		if cerr := f.Close(); werr == nil {
			werr = cerr
		}
		if werr != nil {
			return "", fmt.Errorf("console: write local_token_file %s: %w", path, werr)
		}
		return token, nil
	}
	if !errors.Is(err, fs.ErrExist) {
		return "", fmt.Errorf("console: create local_token_file: %w", err)
	}
	st, err := os.Stat(path)
	if err != nil {
		return "", fmt.Errorf("console: local_token_file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return "", fmt.Errorf("console: local_token_file %s has mode %v: it must be readable by its owner only (chmod 600)", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("console: local_token_file: %w", err)
	}
	token := strings.TrimSpace(string(b))
	if len(token) < 16 {
		return "", fmt.Errorf("console: local_token_file %s holds a token of %d characters; use at least 16 (or delete the file: Waypoint writes a random one)", path, len(token))
	}
	return token, nil
}
