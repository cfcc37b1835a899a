package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/coord"
	"github.com/waypoint-proxy/waypoint/internal/metrics"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/relay"
)

// serveConn runs the whole pipeline for one accepted connection and always
// closes conn.
func (s *Server) serveConn(conn net.Conn) {
	sess := &session{
		id:    strconv.FormatUint(s.nextID.Add(1), 36) + "-" + strconv.FormatInt(time.Now().UnixNano()%1e6, 36),
		conn:  conn,
		start: time.Now(),
		pass:  s.passes.Load(),
	}
	if ra := conn.RemoteAddr(); ra != nil {
		sess.remote = ra.String()
	}
	defer conn.Close()
	if !s.addSession(sess) {
		s.reject(sess, failMsg(KindShutdown, "", errors.New("server closing")))
		return
	}
	defer s.removeSession(sess)
	s.opts.Metrics.ConnOpened(s.opts.Listener)
	err := s.pipeline(sess)
	if err == nil {
		err = sess.stoppedBecause()
	}
	if err != nil && sess.client != nil && sess.client.Cancel == nil {
		s.reject(sess, err)
	}
	s.noteRefusal(sess, err)
	s.logSession(sess, err)
}

// pipeline is the connection's life, one stage per line. It returns nil when
// the session ended normally (either side closed).
func (s *Server) pipeline(sess *session) error {
	hctx, cancel := context.WithTimeout(context.Background(), s.opts.HandshakeTimeout)
	defer cancel()
	if err := s.identify(hctx, sess); err != nil {
		return s.refuseUnidentified(hctx, sess, err)
	}
	if err := s.readStartup(hctx, sess); err != nil {
		return err
	}
	if sess.client.Cancel != nil {
		return s.forwardCancel(hctx, sess)
	}
	if err := s.decide(sess); err != nil {
		return err
	}
	sctx, cancelSetup := context.WithTimeout(context.Background(), s.opts.SetupTimeout)
	defer cancelSetup()
	release, err := s.admit(sctx, sess)
	if err != nil {
		return err
	}
	defer release()
	if err := s.login(sctx, sess); err != nil {
		return err
	}
	defer sess.up.Conn.Close()
	if err := s.watch(sctx, sess); err != nil {
		return err
	}
	if err := s.greet(sess); err != nil {
		return err
	}
	return s.relay(sess)
}

// identify asks the tailnet who is calling.
func (s *Server) identify(ctx context.Context, sess *session) error {
	defer s.stageDone(metrics.StageWhois, time.Now())
	peer, err := s.opts.Resolver.WhoIs(ctx, sess.remote)
	if err != nil {
		return fail(KindUnidentified, fmt.Errorf("whois %s: %w", sess.remote, err))
	}
	sess.peer = peer
	sess.advance(stageIdentified)
	return nil
}

// refuseUnidentified ends a connection whose caller the tailnet could not
// identify (idErr, from identify). So that the client is told why instead
// of seeing the connection drop, it still reads the client's startup, within
// the same handshake deadline and with TLS as the listener offers it; the
// refusal (idErr) is then sent as a FATAL ErrorResponse like any other. A
// CancelRequest is dropped unanswered, as PostgreSQL drops any cancel it
// does not honour. Nothing else runs for such a caller.
func (s *Server) refuseUnidentified(ctx context.Context, sess *session, idErr error) error {
	if err := s.readStartup(ctx, sess); err != nil {
		return fmt.Errorf("%w; the startup failed too: %v", idErr, err)
	}
	return idErr
}

// readStartup runs the Postgres handshake up to the StartupMessage (or a
// CancelRequest).
func (s *Server) readStartup(ctx context.Context, sess *session) error {
	defer s.stageDone(metrics.StageStartup, time.Now())
	c, err := pgwire.Accept(ctx, sess.conn, pgwire.FrontOptions{
		TLSMode:   s.opts.TLSMode,
		TLSConfig: s.opts.TLSConfig,
	})
	if err != nil {
		if errors.Is(err, pgwire.ErrTLSRequired) {
			return fail(KindTLSRequired, err)
		}
		return fail(KindProtocol, fmt.Errorf("startup: %w", err))
	}
	sess.client = c
	sess.advance(stageStarted)
	return nil
}

// decide applies the caller's grant to the requested database, within the
// preset the client asked for (waypoint_presets), which it keeps on sess
// for revalidation.
func (s *Server) decide(sess *session) error {
	defer s.stageDone(metrics.StageDecide, time.Now())
	maxPreset, _, err := authz.PresetRequest(sess.client.Params)
	if err != nil {
		s.opts.Metrics.Refused(s.opts.Listener, authz.BadPresetRequest.String())
		return &stageError{kind: KindDenied, msg: err.Error(), hint: presetRequestHint, err: err}
	}
	sess.maxPreset = maxPreset
	eff, err := authz.Decide(sess.peer, authz.Request{
		Listener:  s.opts.Listener,
		Database:  sess.client.Params["database"],
		MaxPreset: maxPreset,
	}, s.opts.Policy)
	if err != nil {
		var d *authz.Denial
		if errors.As(err, &d) {
			s.opts.Metrics.Refused(s.opts.Listener, d.Reason.String())
			return failMsg(KindDenied, d.ClientMessage(), err)
		}
		s.opts.Metrics.Refused(s.opts.Listener, KindDenied.String())
		return fail(KindDenied, err)
	}
	sess.eff = eff
	return nil
}

// admit counts the connection against the caller's max_conns, across every
// Waypoint instance sharing the coordination store. When the store cannot be
// reached the connection is refused: limits fail closed.
func (s *Server) admit(ctx context.Context, sess *session) (release func(), err error) {
	defer s.stageDone(metrics.StageAdmit, time.Now())
	subject := s.opts.Listener + "/" + sess.peer.Subject()
	release, err = s.opts.Coord.Acquire(ctx, subject, sess.eff.Limits.MaxConns)
	switch {
	case err == nil:
		return release, nil
	case errors.Is(err, coord.ErrLimit):
		s.opts.Metrics.LimitRejected(s.opts.Listener, "max_conns")
		return nil, failMsg(KindLimit, fmt.Sprintf("too many connections for %s: the limit is %d (max_conns)", sess.peer.Subject(), sess.eff.Limits.MaxConns), err)
	default:
		return nil, fail(KindStateUnavailable, err)
	}
}

// login provisions the caller's role and logs in to the backend as it,
// or hands the session a spare backend of the same identity, database and
// grant. The credentials are held until the login finished so that a concurrent
// connection for the same role cannot rotate the password in between.
// Either way a spare is then opened for the next connection (Spares).
func (s *Server) login(ctx context.Context, sess *session) error {
	params := forwardedParams(sess.client.Params, sess.peer)
	if s.useSpare(ctx, sess, params) {
		sess.advance(stageLoggedIn)
		s.refillSpare(sess)
		return nil
	}
	start := time.Now()
	cred, err := s.opts.Provisioner.Ensure(ctx, sess.peer, sess.eff)
	s.opts.Metrics.ProvisionDuration(s.opts.Listener, time.Since(start), err)
	s.stageDone(metrics.StageProvision, start)
	if err != nil {
		return classifyProvision(err)
	}
	defer cred.release()
	sess.role = cred.Role
	start = time.Now()
	dial := &timedDial{dial: s.opts.Backend.DialFunc}
	cfg := s.upstreamConfig(sess.eff.Database, cred.Role, cred.Password, params)
	cfg.DialFunc = dial.DialContext
	up, err := pgwire.ConnectUpstream(ctx, cfg)
	s.opts.Metrics.UpstreamLoginDuration(s.opts.Listener, time.Since(start))
	dialed := time.Duration(dial.took.Load())
	s.observeStage(metrics.StageUpstreamDial, dialed)
	s.observeStage(metrics.StageUpstreamAuth, time.Since(start)-dialed)
	if err != nil {
		return classifyUpstream(err)
	}
	sess.up = up
	sess.advance(stageLoggedIn)
	s.refillSpare(sess)
	return nil
}

// upstreamConfig is how a session (or a spare) logs in to the backend as
// role on database with params.
func (s *Server) upstreamConfig(database, role, password string, params map[string]string) pgwire.UpstreamConfig {
	return pgwire.UpstreamConfig{
		Addr:     s.opts.Backend.Addr,
		Database: database,
		User:     role,
		Password: password,
		Security: s.opts.Backend.Security,
		Params:   params,
		DialFunc: s.opts.Backend.DialFunc,
	}
}

// watch hands sess over to revalidation and makes sure that its decision,
// taken before provisioning, still holds now that it is about to relay.
//
// Once watched, the session is covered by every revalidation pass, like a
// relaying one. A pass that began before that moment may have skipped it, so
// the gap is closed here: passes are counted, and if one began since this
// session's WhoIs (sess.pass), the session re-checks itself exactly as a pass
// would (revoked: refused; privileges changed: reconciled). Either the pass
// saw the session, or the session's own re-check ran after the pass began
// and so sees what the pass saw. Sessions set up while no pass runs pay
// nothing.
//
// A caller whose access was revoked during setup is refused with FATAL 28000
// before it is told that the login succeeded.
func (s *Server) watch(ctx context.Context, sess *session) error {
	sess.mu.Lock()
	sess.watched = true
	sess.mu.Unlock()
	if s.passes.Load() != sess.pass {
		live, _ := s.opts.Provisioner.(LiveProvisioner)
		if _, aborted := s.revalidateOne(ctx, sess, live); aborted {
			return failMsg(KindProvision, "timed out preparing your session", fmt.Errorf("re-check before relay: %w", ctx.Err()))
		}
	}
	err := sess.stoppedBecause()
	var se *stageError
	if errors.As(err, &se) && se.kind == KindRevoked {
		return &stageError{kind: KindRevoked, code: "28000", msg: se.msg, hint: se.hint, err: se.err}
	}
	return err
}

// greet completes the client's startup. Its BackendKeyData carries the
// backend's real process ID and a secret of Waypoint's own (cancelKeys).
func (s *Server) greet(sess *session) error {
	defer s.stageDone(metrics.StageFinish, time.Now())
	key, err := s.keys.register(sess)
	if err != nil {
		return fail(KindInternal, err)
	}
	sess.key = key
	rctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := s.opts.Coord.RegisterCancel(rctx, keyString(key)); err != nil {
		// Cancel from another instance will not reach this session; local
		// cancels still work, so the session goes on.
		s.log.Warn("could not share the cancel key", "conn", sess.id, "err", err)
	}
	if err := sess.client.FinishStartup(sess.up, key); err != nil {
		s.unregisterKey(key)
		return fail(KindProtocol, fmt.Errorf("finish startup: %w", err))
	}
	return nil
}

// relay copies bytes until either side ends the session or it is stopped,
// under the session's limits (which revalidation may change meanwhile).
func (s *Server) relay(sess *session) error {
	defer s.unregisterKey(sess.key)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	lim := sess.startRelay(cancel, func(d time.Duration) {
		s.opts.Metrics.LimitRejected(s.opts.Listener, "max_conn_duration")
		sess.stop(durationLimitError(d))
	})
	if lim == nil {
		return sess.stoppedBecause()
	}
	defer sess.endRelay()
	sess.result = relay.Run(ctx, s.auditTap(sess), sess.up.Conn, relay.Options{Budget: lim.budget, Counters: &sess.bytes})
	if err := sess.stoppedBecause(); err != nil {
		return err
	}
	if sess.result.Reason == relay.ByteLimit {
		s.opts.Metrics.LimitRejected(s.opts.Listener, "max_bytes_per_conn")
		return byteLimitError(lim.budget.Max())
	}
	return nil
}

// stageDone observes the stage that started at start; call it deferred at
// the top of a stage function.
func (s *Server) stageDone(stage string, start time.Time) {
	s.observeStage(stage, time.Since(start))
}

// observeStage records one stage's duration in the metrics and the
// OnStage hook.
func (s *Server) observeStage(stage string, d time.Duration) {
	s.opts.Metrics.ConnectStage(s.opts.Listener, stage, d)
	if s.opts.OnStage != nil {
		s.opts.OnStage(stage, d)
	}
}

// timedDial is a dial function that remembers how long its dials took in
// total (pgconn may dial twice, e.g. TLS then plaintext with "prefer"). It
// stays with the upstream connection for cancel requests, hence atomic.
type timedDial struct {
	dial func(ctx context.Context, network, addr string) (net.Conn, error)
	took atomic.Int64 // nanoseconds
}

// DialContext dials with t.dial, or a net.Dialer when it is nil.
func (t *timedDial) DialContext(ctx context.Context, network, addr string) (net.Conn, error) {
	start := time.Now()
	defer func() { t.took.Add(int64(time.Since(start))) }()
	if t.dial != nil {
		return t.dial(ctx, network, addr)
	}
	var d net.Dialer
	return d.DialContext(ctx, network, addr)
}
