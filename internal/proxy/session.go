package proxy

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/waypoint-proxy/waypoint/internal/audit"
	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/coord"
	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/provision"
	"github.com/waypoint-proxy/waypoint/internal/relay"
)

// session is one client connection as it moves through the pipeline. Fields
// are filled in stage by stage; only the serving goroutine writes them,
// except stopErr, which stop sets under mu.
type session struct {
	id     string
	conn   net.Conn
	remote string // conn's remote address, captured at accept (some conns forget it once closed)
	start  time.Time

	client *pgwire.Client
	peer   identity.Peer
	eff    authz.Effective
	role   string
	up     *pgwire.Upstream
	key    pgwire.CancelKey
	result relay.Result

	mu       sync.Mutex
	cancel   context.CancelFunc // stops the relay; nil until relaying
	stopErr  error              // why the session was stopped from outside
	relaying bool               // login done, bytes flowing
}

// isRelaying reports whether the session is past login and relaying.
func (sess *session) isRelaying() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.relaying
}

// effective returns the session's current decision. Revalidation may
// replace it while the session runs.
func (sess *session) effective() authz.Effective {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.eff
}

func (sess *session) setEffective(eff authz.Effective) {
	sess.mu.Lock()
	sess.eff = eff
	sess.mu.Unlock()
}

// stop ends the session from outside the serving goroutine (shutdown,
// revalidation, limits). err says why; the client is told after the relay
// has stopped. Only the first call has an effect.
func (sess *session) stop(err error) {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	if sess.stopErr != nil {
		return
	}
	sess.stopErr = err
	if sess.cancel != nil {
		sess.cancel()
	}
}

func (sess *session) stoppedBecause() error {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.stopErr
}

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
		Addr:     s.opts.Backend.Addr,
		Database: sess.eff.Database,
		User:     lease.Role,
		Password: lease.Password,
		TLS:      s.opts.Backend.TLS,
		RootCAs:  s.opts.Backend.RootCAs,
		Params:   forwardedParams(sess.client.Params, sess.peer),
		DialFunc: s.opts.Backend.DialFunc,
	})
	s.opts.Metrics.UpstreamLoginDuration(s.opts.Listener, time.Since(start))
	if err != nil {
		return classifyUpstream(err)
	}
	sess.up = up
	return nil
}

// forwardedParams are the client's startup parameters the backend should see:
// everything but user, database and Waypoint's own preset request, plus the
// caller's identity as custom settings (waypoint.login, waypoint.machine,
// waypoint.node; `SHOW waypoint.login` on the backend) and, when the client
// set no application_name, "waypoint <login>" so pg_stat_activity and the
// server log show the human.
func forwardedParams(params map[string]string, peer identity.Peer) map[string]string {
	out := authz.StripPresetRequest(params)
	delete(out, "user")
	delete(out, "database")
	for k := range out {
		if strings.HasPrefix(strings.ToLower(k), "waypoint.") {
			delete(out, k) // the client cannot pose as someone else
		}
	}
	out["waypoint.login"] = peer.Subject()
	out["waypoint.machine"] = peer.MachineName
	out["waypoint.node"] = peer.NodeID
	if out["application_name"] == "" {
		out["application_name"] = truncateName("waypoint " + peer.Subject())
	}
	return out
}

// truncateName cuts s to PostgreSQL's 63-byte name limit on a rune boundary.
func truncateName(s string) string {
	if len(s) <= 63 {
		return s
	}
	cut := 63
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut]
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
	sess.result = relay.Run(ctx, s.auditTap(sess), sess.up.Conn, relay.Options{MaxBytes: limits.MaxBytesPerConn})
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

// auditTap returns the client connection to relay from: tapped for the
// statement audit log when it is on, the plain connection otherwise.
func (s *Server) auditTap(sess *session) net.Conn {
	if s.opts.Audit == nil {
		return sess.client.Conn
	}
	eff := sess.effective()
	return pgwire.TapQueries(sess.client.Conn, audit.MaxSQL+1, func(kind, sql string) {
		s.opts.Audit.Log(audit.Entry{
			Time: time.Now(), Conn: sess.id, Listener: s.opts.Listener,
			Login: sess.peer.Subject(), Machine: sess.peer.MachineName, NodeID: sess.peer.NodeID,
			Database: eff.Database, Role: sess.role, Kind: kind, SQL: sql,
		})
	})
}

func (s *Server) unregisterKey(key pgwire.CancelKey) {
	s.keys.unregister(key)
	s.opts.Coord.UnregisterCancel(keyString(key))
}

// reject tells the client why its connection failed, within a short deadline.
func (s *Server) reject(sess *session, err error) {
	code, msg, hint := clientError(err, sess.id)
	e := pgwire.ClientError{Code: code, Message: msg, Hint: hint}
	if sess.client != nil {
		_ = sess.client.SendError(e)
		return
	}
	_ = sess.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = pgwire.WriteError(sess.conn, e)
}

// logSession writes the one log line every connection gets.
func (s *Server) logSession(sess *session, err error) {
	attrs := []any{
		"conn", sess.id,
		"remote", sess.remote,
		"login", sess.peer.Subject(),
		"machine", sess.peer.MachineName,
		"duration", time.Since(sess.start).Round(time.Millisecond),
	}
	if sess.client != nil && sess.client.Cancel == nil {
		attrs = append(attrs, "database", sess.client.Params["database"])
	}
	if sess.role != "" {
		eff := sess.effective()
		attrs = append(attrs, "role", sess.role, "preset", string(eff.Preset), "preset_limited", eff.PresetLimited)
	}
	if sess.up != nil {
		attrs = append(attrs,
			"bytes_in", sess.result.ClientToServer,
			"bytes_out", sess.result.ServerToClient,
			"close", sess.result.Reason.String())
	}
	level := slog.LevelInfo
	outcome := "ok"
	if sess.client != nil && sess.client.Cancel != nil {
		outcome = "cancel"
	}
	if err != nil {
		k := kindOf(err)
		outcome = k.String()
		level = logLevel(k)
		attrs = append(attrs, "err", err.Error())
	}
	attrs = append(attrs, "outcome", outcome)
	s.log.Log(context.Background(), level, "connection", attrs...)
	s.opts.Metrics.ConnClosed(s.opts.Listener, outcome, sess.result.ClientToServer, sess.result.ServerToClient, time.Since(sess.start))
}

// classifyProvision maps a provisioning failure to a Kind with a safe message.
func classifyProvision(err error) error {
	var pe *provision.Error
	if errors.As(err, &pe) {
		switch pe.Kind {
		case provision.CannotGrant:
			return failMsg(KindCannotGrant, pe.ClientMessage(), err)
		case provision.Unreachable:
			return fail(KindBackendUnreachable, err)
		}
		return failMsg(KindProvision, pe.ClientMessage(), err)
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return failMsg(KindProvision, "timed out preparing your database role", err)
	}
	return fail(KindProvision, err)
}

// classifyUpstream maps an upstream login failure to a Kind. A backend error
// keeps the backend's SQLSTATE and message (e.g. 3D000 database does not
// exist): those are the server's words for the client, not Waypoint internals.
func classifyUpstream(err error) error {
	switch {
	case pgwire.IsAuthFailed(err):
		return fail(KindBackendAuth, err)
	case pgwire.IsUnreachable(err):
		return fail(KindBackendUnreachable, err)
	}
	if code, msg, ok := pgwire.BackendErrorInfo(err); ok {
		return &stageError{kind: KindBackendError, code: code, msg: msg, err: err}
	}
	return fail(KindBackendUnreachable, err)
}
