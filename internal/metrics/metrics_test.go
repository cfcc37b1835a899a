package metrics

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestMetrics_Counters(t *testing.T) {
	tests := []struct {
		name   string
		record func(m *Metrics)
		metric func(m *Metrics) prometheus.Collector
		want   float64
	}{
		{
			name:   "ConnOpened raises the active gauge",
			record: func(m *Metrics) { m.ConnOpened("pg"); m.ConnOpened("pg") },
			metric: func(m *Metrics) prometheus.Collector { return m.sessionsActive.WithLabelValues("pg") },
			want:   2,
		},
		{
			name: "ConnClosed lowers the active gauge",
			record: func(m *Metrics) {
				m.ConnOpened("pg")
				m.ConnOpened("pg")
				m.ConnClosed("pg", "ok", 1, 1, time.Second)
			},
			metric: func(m *Metrics) prometheus.Collector { return m.sessionsActive.WithLabelValues("pg") },
			want:   1,
		},
		{
			name:   "ConnClosed counts the outcome",
			record: func(m *Metrics) { m.ConnClosed("pg", "denied", 0, 0, 0) },
			metric: func(m *Metrics) prometheus.Collector { return m.connections.WithLabelValues("pg", "denied") },
			want:   1,
		},
		{
			name: "ConnClosed adds client to backend bytes",
			record: func(m *Metrics) {
				m.ConnClosed("pg", "ok", 100, 7, 0)
				m.ConnClosed("pg", "ok", 20, 7, 0)
			},
			metric: func(m *Metrics) prometheus.Collector { return m.bytes.WithLabelValues("pg", DirClientToBackend) },
			want:   120,
		},
		{
			name:   "ConnClosed adds backend to client bytes",
			record: func(m *Metrics) { m.ConnClosed("pg", "ok", 100, 7, 0) },
			metric: func(m *Metrics) prometheus.Collector { return m.bytes.WithLabelValues("pg", DirBackendToClient) },
			want:   7,
		},
		{
			name:   "ConnClosed ignores negative byte counts",
			record: func(m *Metrics) { m.ConnClosed("pg", "ok", -5, 0, 0) },
			metric: func(m *Metrics) prometheus.Collector { return m.bytes.WithLabelValues("pg", DirClientToBackend) },
			want:   0,
		},
		{
			name:   "Refused counts the reason",
			record: func(m *Metrics) { m.Refused("pg", "no_grant") },
			metric: func(m *Metrics) prometheus.Collector { return m.refused.WithLabelValues("pg", "no_grant") },
			want:   1,
		},
		{
			name:   "RevalidationClosed counts the reason",
			record: func(m *Metrics) { m.RevalidationClosed("pg", "revoked") },
			metric: func(m *Metrics) prometheus.Collector { return m.revalidationClosed.WithLabelValues("pg", "revoked") },
			want:   1,
		},
		{
			name:   "LimitRejected counts a known limit",
			record: func(m *Metrics) { m.LimitRejected("pg", LimitMaxBytesPerConn) },
			metric: func(m *Metrics) prometheus.Collector {
				return m.limitRejected.WithLabelValues("pg", LimitMaxBytesPerConn)
			},
			want: 1,
		},
		{
			name:   "LimitRejected maps an unknown limit to other",
			record: func(m *Metrics) { m.LimitRejected("pg", "alice@example.com") },
			metric: func(m *Metrics) prometheus.Collector { return m.limitRejected.WithLabelValues("pg", LimitOther) },
			want:   1,
		},
		{
			name:   "CleanupRun counts the run",
			record: func(m *Metrics) { m.CleanupRun("pg", 3, 0, 1, 2); m.CleanupRun("pg", 0, 0, 0, 0) },
			metric: func(m *Metrics) prometheus.Collector { return m.cleanupRuns.WithLabelValues("pg") },
			want:   2,
		},
		{
			name:   "CleanupRun adds dropped roles",
			record: func(m *Metrics) { m.CleanupRun("pg", 3, 0, 1, 2); m.CleanupRun("pg", 2, 0, 0, 0) },
			metric: func(m *Metrics) prometheus.Collector { return m.cleanupRoles.WithLabelValues("pg", CleanupDropped) },
			want:   5,
		},
		{
			name:   "CleanupRun adds deactivated roles",
			record: func(m *Metrics) { m.CleanupRun("pg", 3, 4, 1, 2) },
			metric: func(m *Metrics) prometheus.Collector {
				return m.cleanupRoles.WithLabelValues("pg", CleanupDeactivated)
			},
			want: 4,
		},
		{
			name:   "CleanupRun adds skipped active roles",
			record: func(m *Metrics) { m.CleanupRun("pg", 3, 0, 1, 2) },
			metric: func(m *Metrics) prometheus.Collector {
				return m.cleanupRoles.WithLabelValues("pg", CleanupSkippedActive)
			},
			want: 1,
		},
		{
			name:   "CleanupRun adds errors and ignores negatives",
			record: func(m *Metrics) { m.CleanupRun("pg", -1, 0, -1, 2); m.CleanupRun("pg", 0, 0, 0, -4) },
			metric: func(m *Metrics) prometheus.Collector { return m.cleanupErrors.WithLabelValues("pg") },
			want:   2,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := New(prometheus.NewRegistry())
			tt.record(m)
			if got := testutil.ToFloat64(tt.metric(m)); got != tt.want {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestMetrics_Histograms(t *testing.T) {
	tests := []struct {
		name   string
		record func(m *Metrics)
		metric string
		want   string
	}{
		{
			name:   "ConnClosed observes the session duration",
			record: func(m *Metrics) { m.ConnClosed("pg", "ok", 0, 0, 90*time.Second) },
			metric: "waypoint_session_duration_seconds",
			want: `
# HELP waypoint_session_duration_seconds Lifetime of client connections, from accept to close.
# TYPE waypoint_session_duration_seconds histogram
waypoint_session_duration_seconds_bucket{listener="pg",le="0.1"} 0
waypoint_session_duration_seconds_bucket{listener="pg",le="1"} 0
waypoint_session_duration_seconds_bucket{listener="pg",le="10"} 0
waypoint_session_duration_seconds_bucket{listener="pg",le="60"} 0
waypoint_session_duration_seconds_bucket{listener="pg",le="300"} 1
waypoint_session_duration_seconds_bucket{listener="pg",le="900"} 1
waypoint_session_duration_seconds_bucket{listener="pg",le="1800"} 1
waypoint_session_duration_seconds_bucket{listener="pg",le="3600"} 1
waypoint_session_duration_seconds_bucket{listener="pg",le="14400"} 1
waypoint_session_duration_seconds_bucket{listener="pg",le="43200"} 1
waypoint_session_duration_seconds_bucket{listener="pg",le="86400"} 1
waypoint_session_duration_seconds_bucket{listener="pg",le="+Inf"} 1
waypoint_session_duration_seconds_sum{listener="pg"} 90
waypoint_session_duration_seconds_count{listener="pg"} 1
`,
		},
		{
			name: "ConnectStage observes by stage; an unknown stage is other",
			record: func(m *Metrics) {
				m.ConnectStage("pg", StageProvision, 3*time.Millisecond)
				m.ConnectStage("pg", "made-up", 30*time.Microsecond)
			},
			metric: "waypoint_connect_stage_seconds",
			want: `
# HELP waypoint_connect_stage_seconds Time each stage of a connection's setup took (whois, startup, decide, admit, provision, upstream_dial, upstream_auth, finish); a failed stage is observed too.
# TYPE waypoint_connect_stage_seconds histogram
` + stageBucketLines("other", 0.00005, 0.00003) + stageBucketLines("provision", 0.005, 0.003),
		},
		{
			name: "ProvisionDuration observes by result",
			record: func(m *Metrics) {
				m.ProvisionDuration("pg", 3*time.Millisecond, nil)
				m.ProvisionDuration("pg", 2*time.Second, errors.New("boom"))
			},
			metric: "waypoint_provision_duration_seconds",
			want: `
# HELP waypoint_provision_duration_seconds Time to create or update a backend role for a session, by result (ok or error).
# TYPE waypoint_provision_duration_seconds histogram
waypoint_provision_duration_seconds_bucket{listener="pg",result="error",le="0.0005"} 0
waypoint_provision_duration_seconds_bucket{listener="pg",result="error",le="0.001"} 0
waypoint_provision_duration_seconds_bucket{listener="pg",result="error",le="0.0025"} 0
waypoint_provision_duration_seconds_bucket{listener="pg",result="error",le="0.005"} 0
waypoint_provision_duration_seconds_bucket{listener="pg",result="error",le="0.01"} 0
waypoint_provision_duration_seconds_bucket{listener="pg",result="error",le="0.025"} 0
waypoint_provision_duration_seconds_bucket{listener="pg",result="error",le="0.05"} 0
waypoint_provision_duration_seconds_bucket{listener="pg",result="error",le="0.1"} 0
waypoint_provision_duration_seconds_bucket{listener="pg",result="error",le="0.25"} 0
waypoint_provision_duration_seconds_bucket{listener="pg",result="error",le="0.5"} 0
waypoint_provision_duration_seconds_bucket{listener="pg",result="error",le="1"} 0
waypoint_provision_duration_seconds_bucket{listener="pg",result="error",le="2.5"} 1
waypoint_provision_duration_seconds_bucket{listener="pg",result="error",le="5"} 1
waypoint_provision_duration_seconds_bucket{listener="pg",result="error",le="+Inf"} 1
waypoint_provision_duration_seconds_sum{listener="pg",result="error"} 2
waypoint_provision_duration_seconds_count{listener="pg",result="error"} 1
waypoint_provision_duration_seconds_bucket{listener="pg",result="ok",le="0.0005"} 0
waypoint_provision_duration_seconds_bucket{listener="pg",result="ok",le="0.001"} 0
waypoint_provision_duration_seconds_bucket{listener="pg",result="ok",le="0.0025"} 0
waypoint_provision_duration_seconds_bucket{listener="pg",result="ok",le="0.005"} 1
waypoint_provision_duration_seconds_bucket{listener="pg",result="ok",le="0.01"} 1
waypoint_provision_duration_seconds_bucket{listener="pg",result="ok",le="0.025"} 1
waypoint_provision_duration_seconds_bucket{listener="pg",result="ok",le="0.05"} 1
waypoint_provision_duration_seconds_bucket{listener="pg",result="ok",le="0.1"} 1
waypoint_provision_duration_seconds_bucket{listener="pg",result="ok",le="0.25"} 1
waypoint_provision_duration_seconds_bucket{listener="pg",result="ok",le="0.5"} 1
waypoint_provision_duration_seconds_bucket{listener="pg",result="ok",le="1"} 1
waypoint_provision_duration_seconds_bucket{listener="pg",result="ok",le="2.5"} 1
waypoint_provision_duration_seconds_bucket{listener="pg",result="ok",le="5"} 1
waypoint_provision_duration_seconds_bucket{listener="pg",result="ok",le="+Inf"} 1
waypoint_provision_duration_seconds_sum{listener="pg",result="ok"} 0.003
waypoint_provision_duration_seconds_count{listener="pg",result="ok"} 1
`,
		},
		{
			name: "UpstreamLoginDuration observes, negative as zero",
			record: func(m *Metrics) {
				m.UpstreamLoginDuration("pg", 40*time.Millisecond)
				m.UpstreamLoginDuration("pg", -time.Second)
			},
			metric: "waypoint_upstream_login_duration_seconds",
			want: `
# HELP waypoint_upstream_login_duration_seconds Time to log in to the backend as the provisioned role (dial, TLS and authentication).
# TYPE waypoint_upstream_login_duration_seconds histogram
waypoint_upstream_login_duration_seconds_bucket{listener="pg",le="0.0005"} 1
waypoint_upstream_login_duration_seconds_bucket{listener="pg",le="0.001"} 1
waypoint_upstream_login_duration_seconds_bucket{listener="pg",le="0.0025"} 1
waypoint_upstream_login_duration_seconds_bucket{listener="pg",le="0.005"} 1
waypoint_upstream_login_duration_seconds_bucket{listener="pg",le="0.01"} 1
waypoint_upstream_login_duration_seconds_bucket{listener="pg",le="0.025"} 1
waypoint_upstream_login_duration_seconds_bucket{listener="pg",le="0.05"} 2
waypoint_upstream_login_duration_seconds_bucket{listener="pg",le="0.1"} 2
waypoint_upstream_login_duration_seconds_bucket{listener="pg",le="0.25"} 2
waypoint_upstream_login_duration_seconds_bucket{listener="pg",le="0.5"} 2
waypoint_upstream_login_duration_seconds_bucket{listener="pg",le="1"} 2
waypoint_upstream_login_duration_seconds_bucket{listener="pg",le="2.5"} 2
waypoint_upstream_login_duration_seconds_bucket{listener="pg",le="5"} 2
waypoint_upstream_login_duration_seconds_bucket{listener="pg",le="+Inf"} 2
waypoint_upstream_login_duration_seconds_sum{listener="pg"} 0.04
waypoint_upstream_login_duration_seconds_count{listener="pg"} 2
`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := prometheus.NewRegistry()
			tt.record(New(reg))
			if err := testutil.GatherAndCompare(reg, strings.NewReader(tt.want), tt.metric); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestMetrics_NilReceiver proves that a nil *Metrics records nothing and
// does not panic, so callers need no "metrics enabled?" checks.
func TestMetrics_NilReceiver(t *testing.T) {
	touchAll(nil)
}

// TestMetrics_NamesAndLint checks that every series is named waypoint_*
// and passes the Prometheus naming linter.
func TestMetrics_NamesAndLint(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := New(reg)
	touchAll(m)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(families), len(m.collectors()); got != want {
		t.Errorf("got %d metric families, want %d", got, want)
	}
	for _, mf := range families {
		if !strings.HasPrefix(mf.GetName(), Namespace+"_") {
			t.Errorf("got metric %q, want the %s_ prefix", mf.GetName(), Namespace)
		}
		if mf.GetHelp() == "" {
			t.Errorf("metric %q has no help text", mf.GetName())
		}
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestNew_NilRegisterer checks that New(nil) gives working, unregistered
// collectors.
func TestNew_NilRegisterer(t *testing.T) {
	m := New(nil)
	m.Refused("pg", "no_grant")
	if got := testutil.ToFloat64(m.refused.WithLabelValues("pg", "no_grant")); got != 1 {
		t.Errorf("got %v, want 1", got)
	}
}

// TestNewRegistry checks that the Go and process collectors are included and
// that Metrics registers alongside them.
func TestNewRegistry(t *testing.T) {
	reg := NewRegistry()
	New(reg)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, mf := range families {
		seen[mf.GetName()] = true
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if !seen[name] {
			t.Errorf("got no %s series, want it from NewRegistry", name)
		}
	}
}

// touchAll records one event of every kind.
func touchAll(m *Metrics) {
	m.ConnOpened("pg")
	m.ConnClosed("pg", "ok", 1, 2, time.Second)
	m.Refused("pg", "no_grant")
	m.ProvisionDuration("pg", time.Millisecond, nil)
	m.UpstreamLoginDuration("pg", time.Millisecond)
	m.ConnectStage("pg", StageWhois, time.Millisecond)
	m.SpareBackends("pg", 1)
	m.SpareHandoff("pg", SpareHit)
	m.RevalidationClosed("pg", "revoked")
	m.LimitRejected("pg", LimitMaxConns)
	m.CleanupRun("pg", 1, 0, 1, 1)
}

// stageBucketLines renders the exposition lines of one observation of secs
// in stage, whose first bucket that holds it is le.
func stageBucketLines(stage string, le, secs float64) string {
	var b strings.Builder
	in := false
	for _, bound := range stageBuckets {
		if bound == le {
			in = true
		}
		n := 0
		if in {
			n = 1
		}
		fmt.Fprintf(&b, "waypoint_connect_stage_seconds_bucket{listener=\"pg\",stage=%q,le=%q} %d\n", stage, strconv.FormatFloat(bound, 'g', -1, 64), n)
	}
	fmt.Fprintf(&b, "waypoint_connect_stage_seconds_bucket{listener=\"pg\",stage=%q,le=\"+Inf\"} 1\n", stage)
	fmt.Fprintf(&b, "waypoint_connect_stage_seconds_sum{listener=\"pg\",stage=%q} %s\n", stage, strconv.FormatFloat(secs, 'g', -1, 64))
	fmt.Fprintf(&b, "waypoint_connect_stage_seconds_count{listener=\"pg\",stage=%q} 1\n", stage)
	return b.String()
}
