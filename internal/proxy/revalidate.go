package proxy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
)

// LiveProvisioner is implemented by provisioners that can change a live
// session's role. RoleProvisioner implements it, and so may a test's fake;
// when the configured Provisioner does not, revalidation can still close
// sessions but cannot reconcile a downgrade in place or terminate backend
// sessions.
type LiveProvisioner interface {
	// Reconcile applies eff's privileges to the peer's role without
	// rotating its password.
	Reconcile(ctx context.Context, peer identity.Peer, eff authz.Effective) error
	// Terminate ends a backend session by its process ID.
	Terminate(ctx context.Context, pid uint32) error
	// Touch pushes the roles' expiry forward: they have live sessions.
	Touch(ctx context.Context, roles []string) error
}

// revalidateTimeout bounds one revalidation pass.
const revalidateTimeout = 30 * time.Second

// RunRevalidation re-checks every open session each interval and whenever
// kick delivers (e.g. the tailnet policy changed), until ctx is done. An
// interval of 0 disables the timer; kick may be nil.
func (s *Server) RunRevalidation(ctx context.Context, interval time.Duration, kick <-chan struct{}) {
	var tick <-chan time.Time
	if interval > 0 {
		t := time.NewTicker(interval)
		defer t.Stop()
		tick = t.C
	}
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick:
		case <-kick:
		}
		pctx, cancel := context.WithTimeout(ctx, revalidateTimeout)
		s.Revalidate(pctx)
		cancel()
	}
}

// Revalidate runs one pass: it closes every idle spare backend, and for
// every session logged in upstream (relaying, or about to relay: see watch)
// it asks the tailnet again who the caller is and decides again. A caller
// who lost access has the session closed (the client is told why, the
// backend session is terminated so a running query dies); a changed grant
// is reconciled on the live role; the roles of sessions that stay are
// recorded as in use. It returns how many sessions were closed.
func (s *Server) Revalidate(ctx context.Context) (closed int) {
	s.passes.Add(1) // before listing: a session not listed re-checks itself
	// Spare backends carry no identity check of their own: close them all,
	// so none outlives a policy change (a connection only ever takes a
	// spare of its own, just-made decision anyway; see Spares).
	s.spares.flush(false)
	return s.revalidate(ctx, s.watchedSessions())
}

// revalidate re-checks the given watched sessions (revalidateOne) and
// records the roles of those that stay as in use.
func (s *Server) revalidate(ctx context.Context, sessions []*session) (closed int) {
	live, _ := s.opts.Provisioner.(LiveProvisioner)
	var keep []string
	seen := map[string]bool{}
	for _, sess := range sessions {
		gone, aborted := s.revalidateOne(ctx, sess, live)
		switch {
		case aborted:
			return closed // our own deadline: decide nothing more
		case gone:
			closed++
		case !seen[sess.role]:
			seen[sess.role] = true
			keep = append(keep, sess.role)
		}
	}
	if live != nil && len(keep) > 0 {
		if err := live.Touch(ctx, keep); err != nil {
			s.log.Warn("revalidation: could not extend role expiry", "roles", len(keep), "err", err)
		}
	}
	return closed
}

// revalidateOne re-checks one watched session and acts on the new decision:
// it closes the session when the caller lost access (or when a
// preset-scoped session's preset changed: its role is named after it),
// reconciles the live role when its privileges changed, and applies changed
// limits (applyLimits). It reports whether
// the session was closed, or that ctx ended before a decision (then nothing
// was done).
func (s *Server) revalidateOne(ctx context.Context, sess *session, live LiveProvisioner) (closed, aborted bool) {
	eff, err := s.recheck(ctx, sess)
	cur := sess.effective()
	switch {
	case err != nil && ctx.Err() != nil:
		return false, true
	case err != nil:
		s.revoke(ctx, sess, live, err)
		return true, false
	case cur.PresetLimited && cur.Preset != eff.Preset:
		s.revoke(ctx, sess, live, failMsg(KindRevoked, "your grant changed; reconnect to use the new privileges", errors.New("preset-limited session's preset changed")))
		return true, false
	case live != nil && changed(cur, eff):
		if rerr := live.Reconcile(ctx, sess.peer, eff); rerr != nil {
			s.log.Warn("revalidation: reconcile failed; closing the session", "conn", sess.id, "err", rerr)
			s.revoke(ctx, sess, live, failMsg(KindRevoked, "your privileges changed and Waypoint could not apply them; reconnect", rerr))
			return true, false
		}
		s.log.Info("revalidation: privileges reconciled", "conn", sess.id, "role", sess.role,
			"from", string(cur.Preset), "to", string(eff.Preset))
		sess.setEffective(eff)
	}
	// Limits are not privileges (changed ignores them): compared on their own.
	if eff.Limits != cur.Limits {
		s.applyLimits(sess, cur.Limits, eff.Limits)
	}
	return false, false
}

// recheck repeats identification and the decision for sess. The error is
// classified (KindRevoked) with a client-safe reason.
func (s *Server) recheck(ctx context.Context, sess *session) (authz.Effective, error) {
	peer, err := s.opts.Resolver.WhoIs(ctx, sess.remote)
	if err != nil {
		if ctx.Err() != nil {
			return authz.Effective{}, ctx.Err()
		}
		return authz.Effective{}, failMsg(KindRevoked, "your tailnet node is no longer known to Waypoint", fmt.Errorf("whois: %w", err))
	}
	if peer.NodeID != sess.peer.NodeID || peer.Subject() != sess.peer.Subject() {
		return authz.Effective{}, failMsg(KindRevoked, "the tailnet address of this session now belongs to someone else",
			fmt.Errorf("address %s moved from %s/%s to %s/%s", sess.remote, sess.peer.Subject(), sess.peer.NodeID, peer.Subject(), peer.NodeID))
	}
	cur := sess.effective()
	maxPreset := authz.Preset("")
	if cur.PresetLimited {
		maxPreset = sess.maxPreset
	}
	eff, err := authz.Decide(peer, authz.Request{Listener: s.opts.Listener, Database: cur.Database, MaxPreset: maxPreset}, s.opts.Policy)
	if err != nil {
		msg := "your access was revoked by the tailnet policy"
		var d *authz.Denial
		if errors.As(err, &d) {
			msg = "your access was revoked: " + d.ClientMessage()
		}
		return authz.Effective{}, failMsg(KindRevoked, msg, err)
	}
	return eff, nil
}

// changed reports whether the privileges of two decisions differ.
func changed(a, b authz.Effective) bool {
	return a.Preset != b.Preset || !slices.Equal(a.Schemas, b.Schemas) || !slices.Equal(a.SQL, b.SQL)
}

// revoke stops sess with reason and terminates its backend session.
func (s *Server) revoke(ctx context.Context, sess *session, live LiveProvisioner, reason error) {
	s.log.Info("revalidation: closing session", "conn", sess.id, "login", sess.peer.Subject(), "reason", reason.Error())
	s.opts.Metrics.RevalidationClosed(s.opts.Listener, kindOf(reason).String())
	sess.stop(reason)
	s.terminateBackend(ctx, sess, live)
}

// relayStopWait bounds how long terminateBackend waits for a stopped
// session's relay to return before terminating the backend anyway.
const relayStopWait = 5 * time.Second

// terminateBackend ends sess's backend session server-side, so that a
// running query dies with it. It does nothing without a LiveProvisioner or
// before the upstream login. sess must have been stopped: it first waits
// (at most relayStopWait) for the relay to return, so that the client gets
// Waypoint's reason, not the backend's "terminating connection due to
// administrator command" relayed ahead of it.
func (s *Server) terminateBackend(ctx context.Context, sess *session, live LiveProvisioner) {
	if live != nil && sess.up != nil {
		select {
		case <-sess.relayEnded():
		case <-time.After(relayStopWait):
		case <-ctx.Done():
		}
		if err := live.Terminate(ctx, sess.up.Key.ProcessID); err != nil {
			s.log.Warn("could not terminate the backend session", "conn", sess.id, "err", err)
		}
	}
}

// watchedSessions returns the sessions revalidation covers: logged in
// upstream, about to relay or relaying.
func (s *Server) watchedSessions() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		if sess.isWatched() {
			out = append(out, sess)
		}
	}
	return out
}
