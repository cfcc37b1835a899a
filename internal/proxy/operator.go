package proxy

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/audit"
	"github.com/waypoint-proxy/waypoint/internal/authz"
)

// This file is what the operator console sees of a Server and can do to it:
// a snapshot of its sessions, and ending or re-checking them.

// SessionState is where a session is in its life.
type SessionState string

// The session states.
const (
	// StateSettingUp: identifying the caller, reading the startup message,
	// provisioning or logging in upstream.
	StateSettingUp SessionState = "setting_up"
	// StateRelaying: logged in, bytes flowing.
	StateRelaying SessionState = "relaying"
	// StateDraining: relaying while the Server shuts down; it ends when the
	// client leaves or the drain timeout passes.
	StateDraining SessionState = "draining"
	// StateClosing: stopped (terminated, revoked, a limit), about to end.
	StateClosing SessionState = "closing"
)

// SessionInfo is what an operator sees of one open connection. It holds
// nothing secret: no password, no cancel key, no statement text. Fields the
// session has not reached yet are zero: the identity once the caller is
// identified, Database once the startup message arrived, Role, Preset,
// MaxConns and BackendPID once logged in upstream.
type SessionInfo struct {
	ID       string
	Listener string
	// Login is the caller's login name, or for a tagged node its tags
	// joined by "," (identity.Peer.Subject); Tags are the node's tags.
	Login      string
	Tags       []string
	Machine    string
	NodeID     string
	ClientAddr string // the caller's tailnet ip:port
	Database   string
	Role       string
	Preset     authz.Preset
	// PresetLimited: the client asked for less than its grant.
	PresetLimited bool
	// MaxConns is the caller's connection limit on this listener; 0 means
	// unlimited.
	MaxConns int
	Started  time.Time
	// BytesIn went from the client to the backend, BytesOut the other way,
	// so far.
	BytesIn, BytesOut int64
	State             SessionState
	// BackendPID is the PostgreSQL backend's process ID.
	BackendPID uint32
}

// Operator is who acts on sessions through the console, for the log and the
// audit log.
type Operator struct {
	// Login is the operator's tailnet login (or tags); "local" for the
	// console's loopback face.
	Login string
	// Machine and NodeID name the operator's tailnet node, if any.
	Machine, NodeID string
	// Via is how the operator reached the console: "tailnet" or "local".
	Via string
}

// Listener returns the name of the listener s serves.
func (s *Server) Listener() string { return s.opts.Listener }

// Sessions returns a snapshot of every open connection, oldest first.
// Cancel requests, which are connections too, are left out.
func (s *Server) Sessions() []SessionInfo {
	closing := s.isClosing()
	var out []SessionInfo
	for _, sess := range s.allSessions() {
		if info, ok := s.info(sess, closing); ok {
			out = append(out, info)
		}
	}
	slices.SortFunc(out, func(a, b SessionInfo) int { return a.Started.Compare(b.Started) })
	return out
}

// info describes sess as far as its setup got; ok is false for a cancel
// request.
func (s *Server) info(sess *session, closing bool) (info SessionInfo, ok bool) {
	sess.mu.Lock()
	reached, relaying, stopped := sess.reached, sess.relaying, sess.stopErr != nil
	sess.mu.Unlock()
	info = SessionInfo{
		ID: sess.id, Listener: s.opts.Listener, ClientAddr: sess.remote, Started: sess.start,
		BytesIn: sess.bytes.ClientToServer(), BytesOut: sess.bytes.ServerToClient(),
		State: state(relaying, stopped, closing),
	}
	if reached >= stageIdentified {
		info.Login, info.Machine, info.NodeID = sess.peer.Subject(), sess.peer.MachineName, sess.peer.NodeID
		info.Tags = slices.Clone(sess.peer.Tags)
	}
	if reached >= stageStarted {
		if sess.client.Cancel != nil {
			return SessionInfo{}, false
		}
		info.Database = sess.client.Params["database"]
	}
	if reached >= stageLoggedIn {
		eff := sess.effective()
		info.Role, info.Preset, info.PresetLimited = sess.role, eff.Preset, eff.PresetLimited
		info.MaxConns, info.BackendPID = eff.Limits.MaxConns, sess.up.Key.ProcessID
	}
	return info, true
}

// state names a session's state from its flags.
func state(relaying, stopped, closing bool) SessionState {
	switch {
	case stopped:
		return StateClosing
	case !relaying:
		return StateSettingUp
	case closing:
		return StateDraining
	}
	return StateRelaying
}

// allSessions returns every tracked session.
func (s *Server) allSessions() []*session {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*session, 0, len(s.sessions))
	for sess := range s.sessions {
		out = append(out, sess)
	}
	return out
}

// Terminate ends the session with connection id id on behalf of op: the
// client is told FATAL 57P01 that an operator ended it, and once logged in
// upstream the backend session is terminated too (like a revocation), so a
// running query dies. The action is logged and written to the audit log.
// It returns the session as it was, and false when no open session has
// that id.
func (s *Server) Terminate(ctx context.Context, id string, op Operator) (SessionInfo, bool) {
	closing := s.isClosing()
	for _, sess := range s.allSessions() {
		if sess.id != id {
			continue
		}
		info, ok := s.info(sess, closing)
		if !ok {
			return SessionInfo{}, false
		}
		s.terminate(ctx, sess, info, op)
		return info, true
	}
	return SessionInfo{}, false
}

// TerminateSubject ends every open session of the caller subject (a login
// name, or tags as SessionInfo.Login has them) as Terminate does, and
// returns them.
func (s *Server) TerminateSubject(ctx context.Context, subject string, op Operator) []SessionInfo {
	closing := s.isClosing()
	var out []SessionInfo
	for _, sess := range s.allSessions() {
		info, ok := s.info(sess, closing)
		if !ok || info.Login == "" || info.Login != subject {
			continue
		}
		s.terminate(ctx, sess, info, op)
		out = append(out, info)
	}
	return out
}

// terminate stops sess for op and terminates its backend session.
func (s *Server) terminate(ctx context.Context, sess *session, info SessionInfo, op Operator) {
	sess.stop(failMsg(KindTerminated, "", fmt.Errorf("terminated by operator %s via %s", op.Login, op.Via)))
	if info.BackendPID != 0 {
		live, _ := s.opts.Provisioner.(LiveProvisioner)
		s.terminateBackend(ctx, sess, live)
	}
	s.recordAction("terminate", info, op, "terminated")
}

// RevalidateSubject re-checks now, as a revalidation pass would, every
// session of subject logged in upstream: a caller who lost access is closed
// (57P01, revoked), a changed grant is reconciled. Like a pass it closes
// the idle spare backends, and a session of subject still setting up
// re-checks itself before it relays (see watch). It returns how many
// sessions were checked and how many of them were closed; each is logged
// and audited with op.
func (s *Server) RevalidateSubject(ctx context.Context, subject string, op Operator) (checked, closed int) {
	s.passes.Add(1)
	s.spares.flush(false)
	closing := s.isClosing()
	var sessions []*session
	var infos []SessionInfo
	for _, sess := range s.watchedSessions() {
		if info, ok := s.info(sess, closing); ok && info.Login == subject {
			sessions, infos = append(sessions, sess), append(infos, info)
		}
	}
	closed = s.revalidate(ctx, sessions)
	for i, sess := range sessions {
		outcome := "kept"
		if sess.stoppedBecause() != nil {
			outcome = "closed"
		}
		s.recordAction("revalidate", infos[i], op, outcome)
	}
	return len(sessions), closed
}

// recordAction writes an operator's action on one session to the log and
// the audit log.
func (s *Server) recordAction(action string, info SessionInfo, op Operator, outcome string) {
	s.log.Info("operator action", "action", action, "conn", info.ID, "login", info.Login,
		"machine", info.Machine, "by", op.Login, "by_machine", op.Machine, "via", op.Via, "outcome", outcome)
	s.opts.Audit.LogAction(audit.Action{
		Action: action, By: op.Login, ByMachine: op.Machine, ByNode: op.NodeID, Via: op.Via,
		Session: audit.Session{Conn: info.ID, Listener: s.opts.Listener, Login: info.Login, Machine: info.Machine,
			NodeID: info.NodeID, Database: info.Database, Role: info.Role},
		Outcome: outcome,
	})
}
