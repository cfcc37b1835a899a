package metrics

import (
	"slices"
	"time"
)

// ConnOpened records a new client connection on listener: the
// waypoint_sessions_active gauge goes up by one. Every ConnOpened must be
// matched by exactly one ConnClosed.
func (m *Metrics) ConnOpened(listener string) {
	if m == nil {
		return
	}
	m.sessionsActive.WithLabelValues(listener).Inc()
}

// ConnClosed records the end of a connection that ConnOpened counted:
// waypoint_sessions_active goes down by one, waypoint_connections_total
// counts outcome, waypoint_bytes_total adds in (client to backend) and out
// (backend to client), and the session duration is observed. outcome is a
// word from the caller's fixed vocabulary ("ok" for a session that ran, else
// a failure class such as "denied" or "backend_unreachable"); it must never
// carry user-controlled text. Negative byte counts are ignored.
func (m *Metrics) ConnClosed(listener, outcome string, in, out int64, dur time.Duration) {
	if m == nil {
		return
	}
	m.sessionsActive.WithLabelValues(listener).Dec()
	m.connections.WithLabelValues(listener, outcome).Inc()
	if in > 0 {
		m.bytes.WithLabelValues(listener, DirClientToBackend).Add(float64(in))
	}
	if out > 0 {
		m.bytes.WithLabelValues(listener, DirBackendToClient).Add(float64(out))
	}
	m.sessionDuration.WithLabelValues(listener).Observe(seconds(dur))
}

// Refused records why a connection was refused before relaying (an
// authentication or authorization failure). reason is finer than the
// outcome the same connection later gets in ConnClosed: ConnClosed might say
// outcome "denied" while Refused says "no_grant" or "no_database". Both are
// counted, so waypoint_refused_total explains a part of
// waypoint_connections_total; do not add them together. reason must come
// from a fixed vocabulary.
func (m *Metrics) Refused(listener, reason string) {
	if m == nil {
		return
	}
	m.refused.WithLabelValues(listener, reason).Inc()
}

// ProvisionDuration observes how long provisioning a role took; err (nil or
// not) selects the "result" label, ResultOK or ResultError.
func (m *Metrics) ProvisionDuration(listener string, d time.Duration, err error) {
	if m == nil {
		return
	}
	result := ResultOK
	if err != nil {
		result = ResultError
	}
	m.provisionDuration.WithLabelValues(listener, result).Observe(seconds(d))
}

// UpstreamLoginDuration observes how long the backend login took (dial, TLS
// and authentication as the provisioned role).
func (m *Metrics) UpstreamLoginDuration(listener string, d time.Duration) {
	if m == nil {
		return
	}
	m.upstreamLogin.WithLabelValues(listener).Observe(seconds(d))
}

// ConnectStage observes how long one setup stage of a connection took.
// stage must be one of Stages; anything else is recorded as StageOther.
func (m *Metrics) ConnectStage(listener, stage string, d time.Duration) {
	if m == nil {
		return
	}
	if !slices.Contains(Stages, stage) && stage != StageSpare {
		stage = StageOther
	}
	m.connectStage.WithLabelValues(listener, stage).Observe(seconds(d))
}

// SpareBackends sets the number of idle spare backends.
func (m *Metrics) SpareBackends(listener string, n int) {
	if m == nil {
		return
	}
	m.spareBackends.WithLabelValues(listener).Set(float64(n))
}

// SpareHandoff counts one connection's look for a spare; result is SpareHit,
// SpareMiss or SpareRefused.
func (m *Metrics) SpareHandoff(listener, result string) {
	if m == nil {
		return
	}
	m.spareHandoffs.WithLabelValues(listener, result).Inc()
}

// RevalidationClosed records a session closed because revalidation found its
// access gone. reason must come from a fixed vocabulary.
func (m *Metrics) RevalidationClosed(listener, reason string) {
	if m == nil {
		return
	}
	m.revalidationClosed.WithLabelValues(listener, reason).Inc()
}

// LimitRejected records a connection refused, or a session ended, by a
// limit: LimitMaxConns, LimitMaxConnDuration or LimitMaxBytesPerConn. Any
// other value is recorded as LimitOther, so the label set stays bounded.
func (m *Metrics) LimitRejected(listener, limit string) {
	if m == nil {
		return
	}
	switch limit {
	case LimitMaxConns, LimitMaxConnDuration, LimitMaxBytesPerConn:
	default:
		limit = LimitOther
	}
	m.limitRejected.WithLabelValues(listener, limit).Inc()
}

// CleanupRun records one run of stale-role cleanup: how many roles it
// dropped, how many it deactivated (they own objects), how many it skipped
// because a session still used them, and how many errors it met. Negative
// counts are ignored.
func (m *Metrics) CleanupRun(listener string, dropped, deactivated, skippedActive, errors int) {
	if m == nil {
		return
	}
	m.cleanupRuns.WithLabelValues(listener).Inc()
	// Touch every result series so they exist (at zero) after the first run.
	m.cleanupRoles.WithLabelValues(listener, CleanupDropped).Add(nonNegative(dropped))
	m.cleanupRoles.WithLabelValues(listener, CleanupDeactivated).Add(nonNegative(deactivated))
	m.cleanupRoles.WithLabelValues(listener, CleanupSkippedActive).Add(nonNegative(skippedActive))
	m.cleanupErrors.WithLabelValues(listener).Add(nonNegative(errors))
}

func nonNegative(n int) float64 {
	if n < 0 {
		return 0
	}
	return float64(n)
}
