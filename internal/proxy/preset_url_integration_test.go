package proxy_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/waypoint-proxy/waypoint/internal/pgtest"
)

// TestIntegration_Proxy_PresetRequestInPgxURL: the per-connection preset
// request exactly as the README tells pgx users to write it in a URL — as a
// query key (pgx sends unknown keys as startup parameters) or inside
// options — lowers a readwrite grant to readonly.
func TestIntegration_Proxy_PresetRequestInPgxURL(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	r := newRig(t, pg, nil)
	alice := r.client("alice@example.com", "laptop", readwriteAppdb)
	tests := []struct {
		name, query string
	}{
		{"query key", "waypoint_presets=readonly"},
		{"options", "options=-c%20waypoint_presets%3Dreadonly"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := pgx.ParseConfig(fmt.Sprintf("postgres://me@%s/appdb?sslmode=disable&connect_timeout=20&%s", r.addr, tt.query))
			if err != nil {
				t.Fatal(err)
			}
			cfg.DialFunc = stableAddrDialer(r.tn.Dialer(alice))
			cfg.LookupFunc = func(ctx context.Context, host string) ([]string, error) { return []string{host}, nil }
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			conn, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatalf("connect: %v\n%s", err, r.logs.String())
			}
			defer conn.Close(ctx)
			var user string
			if err := conn.QueryRow(ctx, "select current_user").Scan(&user); err != nil {
				t.Fatal(err)
			}
			if !strings.HasSuffix(user, "_readonly") {
				t.Errorf("role %q, want a readonly-scoped role", user)
			}
			if _, err := conn.Exec(ctx, "insert into items(name) values ('x')"); sqlstate(err) != "42501" {
				t.Errorf("insert got %v, want 42501 permission denied", err)
			}
		})
	}
}
