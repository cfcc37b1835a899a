package main

import (
	"bufio"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/config"
)

const (
	deployConfig  = "../../deploy/waypoint.toml"
	deployService = "../../deploy/waypoint.service"
)

func TestDeploy_ExampleConfigPassesCheck(t *testing.T) {
	t.Setenv("PG_ADMIN_PASSWORD", "example")
	code, out, errOut := runCmd(t, "check", "-config", deployConfig)
	if code != 0 {
		t.Fatalf("waypoint check %s: exit %d, want 0; stderr: %s", deployConfig, code, errOut)
	}
	if !strings.HasPrefix(out, "ok\n") || !strings.Contains(out, "pg-main") {
		t.Errorf("got output %q, want \"ok\" and a line for pg-main", out)
	}
}

// TestDeploy_StopTimeoutCoversDrain keeps the systemd unit's TimeoutStopSec
// above the example's drain timeout, so systemd never kills a draining
// Waypoint.
func TestDeploy_StopTimeoutCoversDrain(t *testing.T) {
	t.Setenv("PG_ADMIN_PASSWORD", "example")
	cfg, err := config.Load(deployConfig)
	if err != nil {
		t.Fatal(err)
	}
	unit := unitSettings(t, deployService)
	stop, err := time.ParseDuration(unit["TimeoutStopSec"])
	if err != nil {
		t.Fatalf("TimeoutStopSec %q: %v", unit["TimeoutStopSec"], err)
	}
	if stop <= cfg.Shutdown.DrainTimeout {
		t.Errorf("TimeoutStopSec: got %v, want more than drain_timeout %v", stop, cfg.Shutdown.DrainTimeout)
	}
	for key, want := range map[string]string{
		"KillSignal": "SIGTERM", "NoNewPrivileges": "yes", "ProtectSystem": "strict",
		"CapabilityBoundingSet": "", "StateDirectory": "waypoint", "Restart": "on-failure",
	} {
		if got, ok := unit[key]; !ok || got != want {
			t.Errorf("%s: got %q (set: %v), want %q", key, got, ok, want)
		}
	}
}

// unitSettings reads the Key=Value lines of a systemd unit (the last one of
// each key wins).
func unitSettings(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	settings := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		if k, v, ok := strings.Cut(line, "="); ok {
			settings[k] = v
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return settings
}
