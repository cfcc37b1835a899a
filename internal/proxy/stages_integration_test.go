package proxy_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/metrics"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
)

// TestIntegration_ConnectStages: a connection's setup is observed stage by
// stage, each once, in order, with durations that add up to no more than
// the connect itself.
func TestIntegration_ConnectStages(t *testing.T) {
	pg := pgtest.Shared(t, pgtest.Options{})
	var mu sync.Mutex
	var seen []string
	var total time.Duration
	r := newRig(t, pg, func(o *proxy.Options) {
		o.OnStage = func(stage string, d time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			seen = append(seen, stage)
			total += d
		}
	})
	c := r.client("stages@example.com", "desk", readonlyAppdb)
	start := time.Now()
	conn := r.mustConnect(c, "appdb", nil)
	took := time.Since(start)
	if err := conn.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(seen, metrics.Stages) {
		t.Errorf("stages observed: got %v, want %v", seen, metrics.Stages)
	}
	if total <= 0 || total > took {
		t.Errorf("sum of stage durations %v, want in (0, %v] (the whole connect)", total, took)
	}
}
