package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/waypoint-proxy/waypoint/internal/config"
	"github.com/waypoint-proxy/waypoint/internal/server"
)

func runServe(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("serve", "Join the tailnet and serve every listener in the configuration until SIGINT or SIGTERM.", stderr)
	path := fs.String("config", "waypoint.toml", "configuration `file`")
	logFormat := fs.String("log-format", "text", "log format: text or json")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	if code := parseFlags(fs, args); code >= 0 {
		return code
	}
	logger, err := newLogger(stderr, *logFormat, *logLevel)
	if err != nil {
		fmt.Fprintln(stderr, "waypoint:", err)
		return 2
	}
	cfg, err := config.Load(*path)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return serve(cfg, logger)
}

// serve runs the proxy until the first SIGINT/SIGTERM, then drains for the
// configured time; a second signal exits at once.
func serve(cfg *config.Config, logger *slog.Logger) int {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		<-sigs
		cancel()
	}()
	a, err := server.Start(ctx, cfg, logger)
	if err != nil {
		logger.Error("waypoint could not start", "err", err)
		return 1
	}
	<-ctx.Done()
	logger.Info("shutting down: no new connections; draining open sessions", "drain_timeout", cfg.Shutdown.DrainTimeout)
	done := make(chan int, 1)
	go func() { done <- a.Shutdown(cfg.Shutdown.DrainTimeout) }()
	select {
	case closed := <-done:
		logger.Info("stopped", "sessions_closed_at_drain_timeout", closed)
		return 0
	case sig := <-sigs:
		logger.Warn("second signal: exiting at once", "signal", sig.String())
		return 1
	}
}

func newLogger(w io.Writer, format, level string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("-log-level: %w", err)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch strings.ToLower(format) {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, errors.New("-log-format must be text or json")
}
