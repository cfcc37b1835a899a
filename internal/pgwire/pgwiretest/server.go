package pgwiretest

import (
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

// sessionTimeout bounds each connection a Server serves: a liveness bound
// so that a test that forgets a session cannot hang, never a performance
// threshold.
const sessionTimeout = time.Minute

// Server is a scripted fake PostgreSQL server on a loopback port, for tests
// of code that logs in to a backend and relays sessions to it, without a
// real PostgreSQL.
//
// It lets in a role whose password it was told (AllowLogin), with MD5
// authentication as PostgreSQL does for an md5 line in pg_hba.conf, and
// refuses any other login with FATAL 28P01. A session then gets
// ParameterStatus, BackendKeyData with a process ID of its own and
// ReadyForQuery, and each simple Query is answered by the Server's
// QueryFunc. A CancelRequest with a session's key cancels a query scripted
// to run until cancelled. SSLRequest is answered 'N'.
//
// It is strict: a message it does not expect (an extended-protocol message,
// a query the QueryFunc does not know, a startup other than protocol 3.0)
// fails the test. A client hanging up at any point is not an error.
type Server struct {
	tb     testing.TB
	ln     net.Listener
	answer QueryFunc
	done   chan struct{} // closed by stop: ends queries running until cancelled

	stopServing func() // closes the listener and waits for the connections being served (testkit.Serve)
	mu          sync.Mutex
	closing     bool
	conns       map[net.Conn]struct{}
	roles       map[string]string // role → password
	sessions    []*Session
	refused     []string // roles whose login was refused
	cancels     int      // CancelRequests received, matching or not
	nextPID     uint32
}

// Session is one logged-in session of a Server.
type Session struct {
	// PID is its process ID, as sent in BackendKeyData.
	PID uint32
	// Params are its startup parameters: user, database and the runtime
	// parameters the client sent.
	Params map[string]string

	secret     uint32
	conn       net.Conn
	wmu        *sync.Mutex // serializes writes to conn: the session's own and Terminate's
	terminated atomic.Bool // set by Terminate before it closes conn
	cancelOnce sync.Once
	cancelled  chan struct{} // closed by a CancelRequest with this session's key
	closeOnce  sync.Once
	closed     chan struct{} // closed when the connection has ended
}

// User is the role the session logged in as.
func (s *Session) User() string { return s.Params["user"] }

// Cancelled reports whether a CancelRequest with the session's key arrived.
func (s *Session) Cancelled() bool { return isClosed(s.cancelled) }

// Ended reports whether the session's connection has ended.
func (s *Session) Ended() bool { return isClosed(s.closed) }

// Result is a scripted answer to one simple Query.
type Result struct {
	// Columns names the text columns of the result set; none means the
	// query returns no rows (e.g. SET).
	Columns []string
	// Rows are the result's rows, each with one value per column.
	Rows [][]string
	// Tag is the CommandComplete tag. "" means "SELECT <number of rows>".
	Tag string
	// ParameterStatus is reported before the result, as PostgreSQL does
	// when a query changes a reported setting.
	ParameterStatus map[string]string
	// UntilCancelled makes the query run until a CancelRequest with the
	// session's key arrives, then fail with 57014 as a cancelled pg_sleep
	// does. Columns and Rows are then ignored.
	UntilCancelled bool
}

// QueryFunc answers query on sess. It reports false for a query that is not
// in the test's script: the test then fails and the client gets an
// ErrorResponse. It is called from the session's goroutine.
type QueryFunc func(sess *Session, query string) (res Result, ok bool)

// StartServer starts a Server whose sessions' queries answer answers.
// tb.Cleanup stops it: it closes the listener and every open connection and
// waits for them.
func StartServer(tb testing.TB, answer QueryFunc) *Server {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &Server{tb: tb, ln: ln, answer: answer, done: make(chan struct{}), conns: map[net.Conn]struct{}{}, roles: map[string]string{}, nextPID: 4000}
	s.stopServing = testkit.Serve(tb, ln, func(conn net.Conn) {
		if !s.track(conn) {
			return
		}
		defer s.untrack(conn)
		_ = conn.SetDeadline(time.Now().Add(sessionTimeout))
		s.serve(conn)
	})
	tb.Cleanup(s.stop)
	return s
}

// Addr is the server's "host:port".
func (s *Server) Addr() string { return s.ln.Addr().String() }

// AllowLogin lets role log in with password from now on. It is safe for
// concurrent use.
func (s *Server) AllowLogin(role, password string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.roles[role] = password
}

// Sessions returns every session that logged in so far, in order.
func (s *Server) Sessions() []*Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]*Session(nil), s.sessions...)
}

// Refused returns the roles of the logins refused so far, in order.
func (s *Server) Refused() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.refused...)
}

// CancelRequests is how many CancelRequests arrived, whether or not their
// key matched a session.
func (s *Server) CancelRequests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancels
}

func (s *Server) stop() {
	s.mu.Lock()
	if !s.closing {
		close(s.done)
	}
	s.closing = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.stopServing()
}

func (s *Server) track(c net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

func (s *Server) untrack(c net.Conn) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	c.Close()
}

// serve plays the server's side of one connection.
func (s *Server) serve(conn net.Conn) {
	wmu := &sync.Mutex{}
	be := pgproto3.NewBackend(conn, lockedWriter{wmu, conn})
	msg, err := be.ReceiveStartupMessage()
	if _, ok := msg.(*pgproto3.SSLRequest); ok && err == nil {
		if _, err := conn.Write([]byte{'N'}); err != nil {
			return
		}
		msg, err = be.ReceiveStartupMessage()
	}
	if err != nil {
		if !s.gone(err) {
			s.tb.Errorf("pgwiretest: reading the startup: %v", err)
		}
		return
	}
	switch m := msg.(type) {
	case *pgproto3.CancelRequest:
		s.cancel(m)
	case *pgproto3.StartupMessage:
		if sess := s.login(be, m, conn, wmu); sess != nil {
			defer sess.closeOnce.Do(func() { close(sess.closed) })
			s.run(be, sess)
		}
	default:
		s.tb.Errorf("pgwiretest: got %T, want a StartupMessage or a CancelRequest", msg)
	}
}

// Terminate ends the session with process ID pid as pg_terminate_backend
// does: FATAL 57P01 "terminating connection due to administrator command",
// then the connection closes. It reports whether such a session was open.
func (s *Server) Terminate(pid uint32) bool {
	s.mu.Lock()
	var sess *Session
	for _, c := range s.sessions {
		if c.PID == pid && !c.Ended() {
			sess = c
		}
	}
	s.mu.Unlock()
	if sess == nil {
		return false
	}
	msg, err := (&pgproto3.ErrorResponse{Severity: "FATAL", Code: "57P01", Message: "terminating connection due to administrator command"}).Encode(nil)
	if err != nil {
		s.tb.Errorf("pgwiretest: encode the termination: %v", err)
	}
	sess.terminated.Store(true)
	sess.wmu.Lock()
	_, _ = sess.conn.Write(msg)
	sess.wmu.Unlock()
	sess.conn.Close()
	return true
}

// lockedWriter writes to w under mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// cancel handles a CancelRequest: the session with its key, if any, is
// cancelled.
func (s *Server) cancel(m *pgproto3.CancelRequest) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cancels++
	if len(m.SecretKey) != 4 {
		return
	}
	secret := uint32(m.SecretKey[0])<<24 | uint32(m.SecretKey[1])<<16 | uint32(m.SecretKey[2])<<8 | uint32(m.SecretKey[3])
	for _, sess := range s.sessions {
		if sess.PID == m.ProcessID && sess.secret == secret {
			sess.cancelOnce.Do(func() { close(sess.cancelled) })
		}
	}
}

// login asks for an MD5 password and checks it. It returns the new
// session, or nil when the login was refused or the client hung up.
func (s *Server) login(be *pgproto3.Backend, m *pgproto3.StartupMessage, conn net.Conn, wmu *sync.Mutex) *Session {
	if m.ProtocolVersion != pgproto3.ProtocolVersion30 {
		s.tb.Errorf("pgwiretest: got protocol version %#x, want 3.0", m.ProtocolVersion)
		return nil
	}
	params := make(map[string]string, len(m.Parameters))
	for k, v := range m.Parameters {
		params[k] = v
	}
	salt := [4]byte{7, 1, 8, 2}
	be.Send(&pgproto3.AuthenticationMD5Password{Salt: salt})
	_ = be.SetAuthType(pgproto3.AuthTypeMD5Password)
	if be.Flush() != nil {
		return nil
	}
	reply, err := be.Receive()
	if err != nil {
		if !s.gone(err) {
			s.tb.Errorf("pgwiretest: reading the password: %v", err)
		}
		return nil
	}
	pw, ok := reply.(*pgproto3.PasswordMessage)
	if !ok {
		s.tb.Errorf("pgwiretest: got %T in answer to MD5 authentication, want a PasswordMessage", reply)
		return nil
	}
	user := params["user"]
	s.mu.Lock()
	password, known := s.roles[user]
	if !known || pw.Password != md5Password(user, password, salt) {
		s.refused = append(s.refused, user)
		s.mu.Unlock()
		be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "28P01", Message: fmt.Sprintf("password authentication failed for user %q", user)})
		_ = be.Flush()
		return nil
	}
	s.nextPID++
	sess := &Session{PID: s.nextPID, Params: params, secret: s.nextPID*2654435761 | 1, conn: conn, wmu: wmu,
		cancelled: make(chan struct{}), closed: make(chan struct{})}
	s.sessions = append(s.sessions, sess)
	s.mu.Unlock()

	be.Send(&pgproto3.AuthenticationOk{})
	for _, ps := range [][2]string{{"server_version", "18.0 (pgwiretest)"}, {"client_encoding", "UTF8"}, {"standard_conforming_strings", "on"}} {
		be.Send(&pgproto3.ParameterStatus{Name: ps[0], Value: ps[1]})
	}
	be.Send(&pgproto3.BackendKeyData{ProcessID: sess.PID, SecretKey: be32(sess.secret)})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	if be.Flush() != nil {
		sess.closeOnce.Do(func() { close(sess.closed) }) // listed, but ended before it began
		return nil
	}
	return sess
}

// run answers sess's messages until it terminates or hangs up.
func (s *Server) run(be *pgproto3.Backend, sess *Session) {
	for {
		msg, err := be.Receive()
		if err != nil {
			if !s.gone(err) && !sess.terminated.Load() {
				s.tb.Errorf("pgwiretest: session %d: %v", sess.PID, err)
			}
			return
		}
		switch m := msg.(type) {
		case *pgproto3.Terminate:
			return
		case *pgproto3.Query:
			if !s.query(be, sess, m.String) {
				return
			}
		default:
			s.tb.Errorf("pgwiretest: session %d: got %T, want a Query or a Terminate", sess.PID, msg)
			be.Send(&pgproto3.ErrorResponse{Severity: "FATAL", Code: "08P01", Message: fmt.Sprintf("pgwiretest: unexpected %T", msg)})
			_ = be.Flush()
			return
		}
	}
}

// query answers one Query from the script. It reports false when the
// session must end.
func (s *Server) query(be *pgproto3.Backend, sess *Session, q string) bool {
	res, ok := s.answer(sess, q)
	if !ok {
		s.tb.Errorf("pgwiretest: session %d: query %q is not in the script", sess.PID, q)
		be.Send(&pgproto3.ErrorResponse{Severity: "ERROR", Code: "XX000", Message: "pgwiretest: query not in the script"})
		be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		return be.Flush() == nil
	}
	for name, value := range res.ParameterStatus {
		be.Send(&pgproto3.ParameterStatus{Name: name, Value: value})
	}
	if res.UntilCancelled {
		if be.Flush() != nil {
			return false
		}
		select {
		case <-sess.cancelled:
		case <-s.done:
			return false
		}
		be.Send(&pgproto3.ErrorResponse{Severity: "ERROR", Code: "57014", Message: "canceling statement due to user request"})
		be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		return be.Flush() == nil
	}
	if len(res.Columns) > 0 {
		fields := make([]pgproto3.FieldDescription, len(res.Columns))
		for i, c := range res.Columns {
			fields[i] = pgproto3.FieldDescription{Name: []byte(c), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1}
		}
		be.Send(&pgproto3.RowDescription{Fields: fields})
		for _, row := range res.Rows {
			values := make([][]byte, len(row))
			for i, v := range row {
				values[i] = []byte(v)
			}
			be.Send(&pgproto3.DataRow{Values: values})
		}
	}
	tag := res.Tag
	if tag == "" {
		tag = "SELECT " + strconv.Itoa(len(res.Rows))
	}
	be.Send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
	be.Send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	return be.Flush() == nil
}

// gone reports whether a read failed because the client hung up or the
// server is stopping (stop closes every connection): neither is a failure.
func (s *Server) gone(err error) bool {
	if isHangUp(err) {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing && errors.Is(err, net.ErrClosed)
}

// md5Password is what a client answers to AuthenticationMD5Password:
// "md5" + hex(md5(hex(md5(password + user)) + salt)).
func md5Password(user, password string, salt [4]byte) string {
	inner := md5.Sum([]byte(password + user))
	outer := md5.Sum(append([]byte(hex.EncodeToString(inner[:])), salt[:]...))
	return "md5" + hex.EncodeToString(outer[:])
}

func be32(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

func isClosed(ch chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}
