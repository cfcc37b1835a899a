// Package metrics holds Waypoint's Prometheus collectors and the small HTTP
// server that exposes them with health endpoints (/metrics, /healthz,
// /readyz).
//
// Every series is named waypoint_* and every label has a bounded set of
// values: a listener name from the configuration, or a word from a fixed
// vocabulary chosen by the caller (an outcome, a reason, a limit). Logins,
// machine names, databases and role names are never labels: they belong in
// the structured log, one line per connection.
//
// All Metrics methods are safe for concurrent use, and safe on a nil
// *Metrics, which records nothing — so code paths may call them
// unconditionally whether or not metrics are enabled.
package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Namespace prefixes every metric name.
const Namespace = "waypoint"

// Byte directions, the values of the "direction" label of waypoint_bytes_total.
const (
	DirClientToBackend = "client_to_backend"
	DirBackendToClient = "backend_to_client"
)

// Limit names, the values of the "limit" label of waypoint_limit_rejected_total.
// Any other value passed to LimitRejected is recorded as LimitOther.
const (
	LimitMaxConns        = "max_conns"
	LimitMaxConnDuration = "max_conn_duration"
	LimitMaxBytesPerConn = "max_bytes_per_conn"
	LimitOther           = "other"
)

// Results of a provisioning run, the values of the "result" label of
// waypoint_provision_duration_seconds.
const (
	ResultOK    = "ok"
	ResultError = "error"
)

// Cleanup role outcomes, the values of the "result" label of
// waypoint_cleanup_roles_total.
const (
	CleanupDropped       = "dropped"
	CleanupDeactivated   = "deactivated" // kept NOLOGIN because it owns objects
	CleanupSkippedActive = "skipped_active"
)

// Connection setup stages, the values of the "stage" label of
// waypoint_connect_stage_seconds, in the order a connection goes through
// them. Any other value passed to ConnectStage is recorded as StageOther.
const (
	StageWhois        = "whois"         // identify the caller on the tailnet
	StageStartup      = "startup"       // TLS negotiation and the client's startup packet
	StageDecide       = "decide"        // apply the grant
	StageAdmit        = "admit"         // count against max_conns
	StageProvision    = "provision"     // create, reconcile or rotate the role
	StageUpstreamDial = "upstream_dial" // TCP connection to the backend
	StageUpstreamAuth = "upstream_auth" // backend TLS, authentication, until idle
	StageFinish       = "finish"        // cancel key and the rest of the client's startup
	StageSpare        = "spare"         // a spare backend handed over, the client's parameters applied (instead of provision and upstream_*)
	StageOther        = "other"
)

// Results of handing a connection a spare backend, the values of the
// "result" label of waypoint_spare_handoffs_total.
const (
	SpareHit     = "hit"     // a spare was handed over
	SpareMiss    = "miss"    // none was idle for the identity, database and grant
	SpareRefused = "refused" // one was, but refused the client's parameters (closed; normal path)
)

// Stages lists the connection setup stages in order.
var Stages = []string{StageWhois, StageStartup, StageDecide, StageAdmit, StageProvision, StageUpstreamDial, StageUpstreamAuth, StageFinish}

// stageBuckets resolve the stages of one connection setup, from tens of
// microseconds (decide) to seconds (a slow backend).
var stageBuckets = []float64{
	0.00002, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
}

// latencyBuckets suit operations that take from half a millisecond to a few
// seconds: provisioning a role (a few SQL statements) and a backend login.
var latencyBuckets = []float64{
	0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5,
}

// sessionBuckets suit session lifetimes, from a one-shot query (under a
// second) to a long-lived pooled connection (a day).
var sessionBuckets = []float64{
	0.1, 1, 10, 60, 300, 900, 1800, 3600, 4 * 3600, 12 * 3600, 24 * 3600,
}

// Metrics is the set of Waypoint's collectors. Create it with New; the zero
// value is not usable, but a nil *Metrics is (it records nothing).
type Metrics struct {
	sessionsActive     *prometheus.GaugeVec
	connections        *prometheus.CounterVec
	bytes              *prometheus.CounterVec
	sessionDuration    *prometheus.HistogramVec
	refused            *prometheus.CounterVec
	provisionDuration  *prometheus.HistogramVec
	upstreamLogin      *prometheus.HistogramVec
	connectStage       *prometheus.HistogramVec
	spareBackends      *prometheus.GaugeVec
	spareHandoffs      *prometheus.CounterVec
	revalidationClosed *prometheus.CounterVec
	limitRejected      *prometheus.CounterVec
	cleanupRuns        *prometheus.CounterVec
	cleanupRoles       *prometheus.CounterVec
	cleanupErrors      *prometheus.CounterVec
}

// New creates the collectors and registers them on reg. A nil reg registers
// nothing (the collectors still count; useful in tests). New panics if reg
// already holds collectors with the same names — registering twice is a
// programming error, as with prometheus.MustRegister.
func New(reg prometheus.Registerer) *Metrics {
	m := &Metrics{
		sessionsActive: gaugeVec("sessions_active",
			"Client sessions currently open (from accept to close).", "listener"),
		connections: counterVec("connections_total",
			"Client connections closed, by outcome: \"ok\" for a session that ran, otherwise the failure class that ended it.",
			"listener", "outcome"),
		bytes: counterVec("bytes_total",
			"Bytes relayed between clients and backends, by direction (client_to_backend or backend_to_client).",
			"listener", "direction"),
		sessionDuration: histogramVec("session_duration_seconds",
			"Lifetime of client connections, from accept to close.", sessionBuckets, "listener"),
		refused: counterVec("refused_total",
			"Connections refused before relaying, by fine-grained reason (e.g. no_grant, no_database). Each is also counted once in waypoint_connections_total under its coarser outcome.",
			"listener", "reason"),
		provisionDuration: histogramVec("provision_duration_seconds",
			"Time to create or update a backend role for a session, by result (ok or error).",
			latencyBuckets, "listener", "result"),
		upstreamLogin: histogramVec("upstream_login_duration_seconds",
			"Time to log in to the backend as the provisioned role (dial, TLS and authentication).",
			latencyBuckets, "listener"),
		connectStage: histogramVec("connect_stage_seconds",
			"Time each stage of a connection's setup took (whois, startup, decide, admit, provision, upstream_dial, upstream_auth, finish); a failed stage is observed too.",
			stageBuckets, "listener", "stage"),
		spareBackends: gaugeVec("spare_backends",
			"Idle spare backend sessions, logged in and waiting for the next connection of their identity.", "listener"),
		spareHandoffs: counterVec("spare_handoffs_total",
			"Connections that looked for a spare backend, by result (hit, miss, refused).", "listener", "result"),
		revalidationClosed: counterVec("revalidation_closed_total",
			"Sessions closed because periodic revalidation found access lost, by reason.",
			"listener", "reason"),
		limitRejected: counterVec("limit_rejected_total",
			"Connections refused or sessions ended by a limit (max_conns, max_conn_duration, max_bytes_per_conn).",
			"listener", "limit"),
		cleanupRuns: counterVec("cleanup_runs_total",
			"Runs of the cleanup of stale backend roles.", "listener"),
		cleanupRoles: counterVec("cleanup_roles_total",
			"Stale backend roles seen by cleanup, by result (dropped, or skipped_active because a session still uses the role).",
			"listener", "result"),
		cleanupErrors: counterVec("cleanup_errors_total",
			"Errors met by the cleanup of stale backend roles.", "listener"),
	}
	if reg != nil {
		reg.MustRegister(m.collectors()...)
	}
	return m
}

// collectors lists every collector of m, for registration.
func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{
		m.sessionsActive, m.connections, m.bytes, m.sessionDuration, m.refused,
		m.provisionDuration, m.upstreamLogin, m.connectStage, m.spareBackends, m.spareHandoffs,
		m.revalidationClosed, m.limitRejected,
		m.cleanupRuns, m.cleanupRoles, m.cleanupErrors,
	}
}

// NewRegistry returns a registry holding the Go runtime and process
// collectors (go_*, process_*), ready for New and Handler.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return reg
}

func counterVec(name, help string, labels ...string) *prometheus.CounterVec {
	return prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: Namespace, Name: name, Help: help}, labels)
}

func gaugeVec(name, help string, labels ...string) *prometheus.GaugeVec {
	return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Name: name, Help: help}, labels)
}

func histogramVec(name, help string, buckets []float64, labels ...string) *prometheus.HistogramVec {
	return prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: Namespace, Name: name, Help: help, Buckets: buckets,
	}, labels)
}

// seconds converts d for a histogram; a negative duration (a clock step) is
// recorded as zero.
func seconds(d time.Duration) float64 {
	if d < 0 {
		return 0
	}
	return d.Seconds()
}
