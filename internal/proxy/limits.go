package proxy

import (
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/relay"
)

// liveLimits enforce a relaying session's max_conn_duration and
// max_bytes_per_conn, and let revalidation change them while it relays. It
// is guarded by its session's mu.
type liveLimits struct {
	start    time.Time           // when the relay began: the duration counts from here
	budget   *relay.Budget       // max_bytes_per_conn, read by the relay at each read
	counters *relay.Counters     // bytes relayed so far, both directions (the session's)
	timer    *time.Timer         // fires at max_conn_duration; nil when unlimited
	expire   func(time.Duration) // ends the session for reaching that duration
}

// set enforces lim from now on. The duration timer is re-armed for what is
// left of the new duration, counted from the relay's start (so it fires at
// once if that has passed); the byte budget takes effect at the relay's next
// read. set reports whether the bytes already relayed reach the new budget:
// the relay would end only at its next read, so the caller ends an idle
// session at once.
func (l *liveLimits) set(lim authz.Limits) (overBudget bool) {
	l.stop()
	if d := lim.MaxConnDuration; d > 0 {
		l.timer = time.AfterFunc(max(d-time.Since(l.start), 0), func() { l.expire(d) })
	}
	l.budget.Set(lim.MaxBytesPerConn)
	used := l.counters.ClientToServer() + l.counters.ServerToClient()
	return lim.MaxBytesPerConn > 0 && used >= lim.MaxBytesPerConn
}

// stop disarms the duration timer.
func (l *liveLimits) stop() {
	if l.timer != nil {
		l.timer.Stop()
		l.timer = nil
	}
}

// startRelay registers cancel as the way to stop sess's relay and arms the
// limits of its current decision; expire ends the session when it reaches
// its duration. It returns nil, arming nothing, when sess was stopped
// already. The caller must call endRelay once the relay has returned.
func (sess *session) startRelay(cancel func(), expire func(time.Duration)) *liveLimits {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.stopErr != nil {
		return nil
	}
	sess.cancel = cancel
	sess.relayEnd = make(chan struct{})
	sess.relaying = true
	sess.limits = &liveLimits{start: time.Now(), budget: relay.NewBudget(0), counters: &sess.bytes, expire: expire}
	sess.limits.set(sess.eff.Limits) // nothing relayed yet: never over budget
	return sess.limits
}

// endRelay disarms the limits startRelay armed; later changes are only
// recorded.
func (sess *session) endRelay() {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	close(sess.relayEnd)
	if sess.limits != nil {
		sess.limits.stop()
		sess.limits = nil
	}
}

// relayEnded returns a channel closed once sess's relay has returned, so
// that nothing more from the backend reaches the client. Called after
// stop, it never blocks on a relay that was not started: stop keeps one
// from starting, and the channel is then closed already.
func (sess *session) relayEnded() <-chan struct{} {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.relayEnd == nil {
		ended := make(chan struct{})
		close(ended)
		return ended
	}
	return sess.relayEnd
}

// setLimits makes lim the session's limits: recorded in its decision (a
// relay that has not started yet arms them) and, while it relays, enforced
// at once. It reports whether the bytes already relayed reach a lowered
// max_bytes_per_conn.
func (sess *session) setLimits(lim authz.Limits) (overBudget bool) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	sess.eff.Limits = lim
	if sess.limits == nil {
		return false
	}
	return sess.limits.set(lim)
}

// applyLimits puts sess under the limits of its new decision, found changed
// by revalidation: a lowered max_conn_duration ends the session when it is
// reached, at once if it already was; a lowered max_bytes_per_conn ends it
// when the bytes relayed reach it, at once if they already do; raised limits
// give the session more room. max_conns is checked only when a connection
// is opened: a lower count closes no open session.
func (s *Server) applyLimits(sess *session, from, to authz.Limits) {
	s.log.Info("revalidation: limits changed", "conn", sess.id,
		"max_conn_duration", to.MaxConnDuration, "was", from.MaxConnDuration,
		"max_bytes_per_conn", to.MaxBytesPerConn, "was_bytes", from.MaxBytesPerConn)
	if sess.setLimits(to) {
		s.opts.Metrics.LimitRejected(s.opts.Listener, "max_bytes_per_conn")
		sess.stop(byteLimitError(to.MaxBytesPerConn))
	}
}
