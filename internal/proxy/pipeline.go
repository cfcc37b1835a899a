package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/coord"
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
		return err
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
	if err := s.greet(sess); err != nil {
		return err
	}
	return s.relay(sess)
}

// identify asks the tailnet who is calling.
func (s *Server) identify(ctx context.Context, sess *session) error {
	peer, err := s.opts.Resolver.WhoIs(ctx, sess.remote)
	if err != nil {
		return fail(KindUnidentified, fmt.Errorf("whois %s: %w", sess.remote, err))
	}
	sess.peer = peer
	sess.advance(stageIdentified)
	return nil
}

// readStartup runs the Postgres handshake up to the StartupMessage (or a
// CancelRequest).
func (s *Server) readStartup(ctx context.Context, sess *session) error {
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

// decide applies the caller's grant to the requested database.
func (s *Server) decide(sess *session) error {
	maxPreset, _, err := authz.PresetRequest(sess.client.Params)
	if err != nil {
		return failMsg(KindDenied, "invalid waypoint_presets request: "+err.Error(), err)
	}
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

// login provisions the caller's role and logs in to the backend as it. The
// lease is held until the login finished so that a concurrent connection for
// the same role cannot rotate the password in between.
func (s *Server) login(ctx context.Context, sess *session) error {
	start := time.Now()
	lease, err := s.opts.Provisioner.Ensure(ctx, sess.peer, sess.eff)
	s.opts.Metrics.ProvisionDuration(s.opts.Listener, time.Since(start), err)
	if err != nil {
		return classifyProvision(err)
	}
	defer lease.Release()
	sess.role = lease.Role
	start = time.Now()
	up, err := pgwire.ConnectUpstream(ctx, pgwire.UpstreamConfig{
		Addr:        s.opts.Backend.Addr,
		Database:    sess.eff.Database,
		User:        lease.Role,
		Password:    lease.Password,
		TLS:         s.opts.Backend.TLS,
		RootCAs:     s.opts.Backend.RootCAs,
		RequireAuth: s.opts.Backend.Auth,
		Params:      forwardedParams(sess.client.Params, sess.peer),
		DialFunc:    s.opts.Backend.DialFunc,
	})
	s.opts.Metrics.UpstreamLoginDuration(s.opts.Listener, time.Since(start))
	if err != nil {
		return classifyUpstream(err)
	}
	sess.up = up
	sess.advance(stageLoggedIn)
	return nil
}

// greet completes the client's startup with Waypoint's own cancel key.
func (s *Server) greet(sess *session) error {
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

// relay copies bytes until either side ends the session or it is stopped.
func (s *Server) relay(sess *session) error {
	defer s.unregisterKey(sess.key)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sess.mu.Lock()
	if sess.stopErr != nil {
		sess.mu.Unlock()
		return sess.stopErr
	}
	sess.cancel = cancel
	sess.relaying = true
	sess.mu.Unlock()
	limits := sess.effective().Limits
	if d := limits.MaxConnDuration; d > 0 {
		t := time.AfterFunc(d, func() {
			s.opts.Metrics.LimitRejected(s.opts.Listener, "max_conn_duration")
			sess.stop(&stageError{kind: KindLimit, code: "57P01",
				msg: fmt.Sprintf("session ended: it reached the maximum duration of %v (max_conn_duration); reconnect to continue", d)})
		})
		defer t.Stop()
	}
	sess.result = relay.Run(ctx, s.auditTap(sess), sess.up.Conn, relay.Options{MaxBytes: limits.MaxBytesPerConn, Counters: &sess.bytes})
	if err := sess.stoppedBecause(); err != nil {
		return err
	}
	if sess.result.Reason == relay.ByteLimit {
		s.opts.Metrics.LimitRejected(s.opts.Listener, "max_bytes_per_conn")
		return &stageError{kind: KindLimit, code: "53400",
			msg: fmt.Sprintf("session ended: it relayed the maximum of %d bytes (max_bytes_per_conn); reconnect to continue", limits.MaxBytesPerConn)}
	}
	return nil
}
