// Package proxy is the per-connection pipeline of a Waypoint listener:
//
//	accept → identify (WhoIs) → read startup → decide → provision → log in upstream
//	       → watch (re-check if revalidation ran meanwhile) → relay
//
// Each stage is one small function bounded by a deadline; each classifies its
// own failures (errors.go), and one place turns them into what the client is
// told. A Server serves any net.Listener, so tests can use loopback and
// production uses the tailnet listener built in cmd.
package proxy

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/acceptloop"
	"github.com/waypoint-proxy/waypoint/internal/audit"
	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/coord"
	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/metrics"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
	"github.com/waypoint-proxy/waypoint/internal/provision"
)

// Provisioner creates or updates the backend role for a caller.
// RoleProvisioner adapts a *provision.Provisioner; tests pass fakes. A
// Provisioner that is also a LiveProvisioner lets revalidation change or
// end live sessions' roles.
type Provisioner interface {
	// Ensure returns credentials for peer's role on eff.Database, with
	// exactly the privileges eff implies. The proxy calls their Release
	// once its upstream login with them has finished.
	Ensure(ctx context.Context, peer identity.Peer, eff authz.Effective) (Credentials, error)
}

// Credentials are a login Provisioner.Ensure prepared.
type Credentials struct {
	Role     string // the backend role to log in as
	Password string // its password
	// Release ends the provisioner's hold on the password (no other
	// rotation may change it before the login that uses it). The proxy
	// calls it exactly once, after the login, whether it succeeded or not;
	// it must not block. Nil means there is nothing to release.
	Release func()
}

// release calls c.Release, if any.
func (c Credentials) release() {
	if c.Release != nil {
		c.Release()
	}
}

// RoleProvisioner adapts a *provision.Provisioner to Provisioner (Ensure's
// Lease becomes Credentials whose Release releases it) and to
// LiveProvisioner (its Reconcile, Terminate and Touch, by embedding).
type RoleProvisioner struct {
	*provision.Provisioner
}

// Ensure is provision.Provisioner.Ensure, its Lease as Credentials.
func (p RoleProvisioner) Ensure(ctx context.Context, peer identity.Peer, eff authz.Effective) (Credentials, error) {
	lease, err := p.Provisioner.Ensure(ctx, peer, eff)
	if err != nil {
		return Credentials{}, err
	}
	return Credentials{Role: lease.Role, Password: lease.Password, Release: lease.Release}, nil
}

// Backend says how to reach and log in to the real PostgreSQL server.
type Backend struct {
	// Addr is the backend's "host:port".
	Addr string
	// Security is how role logins are secured: TLS mode, certificate
	// checks and the authentication methods they answer. The zero value is
	// prefer, with scram-sha-256 and md5 but never cleartext; it must pass
	// Validate.
	Security pgwire.BackendSecurity
	// DialFunc dials the backend. Nil means a plain net.Dialer.
	DialFunc func(ctx context.Context, network, addr string) (net.Conn, error)
}

// Options configure a Server. Resolver, Provisioner and Backend.Addr are
// required; every other field has a default stated on it.
type Options struct {
	// Listener is the listener's name: the key grants use under "backends".
	Listener string
	// Resolver identifies the caller of each connection (tailnet WhoIs).
	Resolver identity.Resolver
	// Provisioner creates the caller's backend role: RoleProvisioner in
	// production. When it is also a LiveProvisioner, revalidation uses it.
	Provisioner Provisioner
	// Backend is the PostgreSQL server connections are relayed to.
	Backend Backend
	// Policy carries the defaults and raw-SQL switch for this listener.
	Policy authz.Policy
	// TLSMode is off, optional or require. "" means off.
	TLSMode pgwire.TLSMode
	// TLSConfig serves client TLS. Nil means TLS is unavailable (SSLRequest
	// is answered 'N'); it must be set when TLSMode is require.
	TLSConfig *tls.Config
	// HandshakeTimeout bounds identification and the client's startup
	// packet. Zero means 10 s.
	HandshakeTimeout time.Duration
	// SetupTimeout bounds provisioning plus the upstream login. Zero means 30 s.
	SetupTimeout time.Duration
	// Logger receives one line per connection. Nil means slog.Default().
	Logger *slog.Logger
	// Metrics records connection outcomes and latencies. Nil records nothing.
	Metrics *metrics.Metrics
	// OnStage, when set, is called with the duration of each setup stage
	// of every connection (metrics.Stages), from the connection's
	// goroutine; it must be safe for concurrent use. For benchmarks. Nil
	// means none.
	OnStage func(stage string, d time.Duration)
	// Audit, when set, records every statement text (simple Query and
	// extended Parse) and every fast-path FunctionCall (OID and argument
	// sizes, not values) with the caller's identity. Nil means no audit log.
	Audit *audit.Logger
	// Coord counts connections per user (max_conns) and routes cancel
	// requests between Waypoint instances. Nil means an in-memory store
	// private to this Server.
	Coord coord.Store
	// Spares configures spare backends (see Spares). The zero value
	// disables them.
	Spares Spares
	// Refusals, when set, keeps the connections refused before relaying,
	// for the operator console; several Servers may share one. Nil keeps
	// none.
	Refusals *Refusals
}

// Server serves one Waypoint listener. It is safe for concurrent use; Serve
// may be called for several listeners of the same configuration.
type Server struct {
	opts   Options
	log    *slog.Logger
	keys   *cancelKeys
	spares *sparePool
	nextID atomic.Uint64
	passes atomic.Uint64   // revalidation passes begun; see watch
	done   context.Context // done once Shutdown begins: ends Serve's accept loops
	stop   context.CancelFunc

	mu        sync.Mutex
	listeners map[net.Listener]struct{}
	sessions  map[*session]struct{}
	closing   bool
	wg        sync.WaitGroup // sessions being served
	refills   sync.WaitGroup // spares being opened in the background (refillSpare)
}

// New checks opts and returns a Server that is not yet serving.
func New(opts Options) (*Server, error) {
	switch {
	case opts.Resolver == nil:
		return nil, errors.New("proxy: Options.Resolver is required")
	case opts.Provisioner == nil:
		return nil, errors.New("proxy: Options.Provisioner is required")
	case opts.Backend.Addr == "":
		return nil, errors.New("proxy: Options.Backend.Addr is required")
	case opts.TLSMode == "require" && opts.TLSConfig == nil:
		return nil, errors.New("proxy: TLSMode require needs a TLSConfig")
	}
	if err := opts.Backend.Security.Validate(); err != nil {
		return nil, fmt.Errorf("proxy: Options.Backend.Security: %w", err)
	}
	if opts.HandshakeTimeout <= 0 {
		opts.HandshakeTimeout = 10 * time.Second
	}
	if opts.SetupTimeout <= 0 {
		opts.SetupTimeout = 30 * time.Second
	}
	if opts.TLSMode == "" {
		opts.TLSMode = "off"
	}
	if opts.Spares.PerRole < 0 || opts.Spares.Max < 0 || opts.Spares.IdleTimeout < 0 {
		return nil, errors.New("proxy: Options.Spares must not be negative")
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if opts.Coord == nil {
		opts.Coord = coord.NewMemory()
	}
	done, stop := context.WithCancel(context.Background())
	s := &Server{
		opts:      opts,
		done:      done,
		stop:      stop,
		log:       log.With("listener", opts.Listener),
		keys:      newCancelKeys(),
		spares:    newSparePool(opts.Spares),
		listeners: map[net.Listener]struct{}{},
		sessions:  map[*session]struct{}{},
	}
	opts.Coord.OnCancel(s.routedCancel)
	return s, nil
}

// ErrServerClosed is returned by Serve after Shutdown or Close.
var ErrServerClosed = errors.New("proxy: server closed")

// Serve accepts connections on ln until ln fails permanently or the server is
// shut down, and serves each on its own goroutine. Temporary accept errors
// are retried with backoff (acceptloop), which shutdown cuts short. Serve
// closes ln when it returns.
func (s *Server) Serve(ln net.Listener) error {
	if !s.track(ln) {
		ln.Close()
		return ErrServerClosed
	}
	defer s.untrack(ln)
	err := acceptloop.Run(s.done, ln, func(conn net.Conn) {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.serveConn(conn)
		}()
	}, acceptloop.Options{OnRetry: func(err error, backoff time.Duration) {
		s.log.Warn("accept failed; retrying", "err", err, "backoff", backoff)
	}})
	if s.isClosing() {
		return ErrServerClosed
	}
	return fmt.Errorf("accept: %w", err)
}

// track records ln so that Shutdown closes it at once; it reports false,
// tracking nothing, once the server is closing.
func (s *Server) track(ln net.Listener) bool { return addUnlessClosing(s, s.listeners, ln) }

// untrack forgets ln and closes it.
func (s *Server) untrack(ln net.Listener) {
	removeFrom(s, s.listeners, ln)
	ln.Close()
}

func (s *Server) isClosing() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closing
}

// Shutdown stops accepting, then waits for open sessions to end until ctx is
// done; sessions still open then are told Waypoint is shutting down (57P01)
// and closed. Spare backends being opened are abandoned and waited for. It
// returns how many sessions had to be closed that way.
// Shutdown is idempotent.
func (s *Server) Shutdown(ctx context.Context) (closed int) {
	s.mu.Lock()
	s.closing = true
	s.stop() // ends accept backoffs; the listeners are closed here, before Shutdown returns
	for ln := range s.listeners {
		ln.Close()
	}
	s.mu.Unlock()
	s.spares.flush(true)

	done := make(chan struct{})
	go func() { s.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		s.mu.Lock()
		for sess := range s.sessions {
			sess.stop(failMsg(KindShutdown, "", errors.New("drain timeout reached")))
			closed++
		}
		s.mu.Unlock()
		<-done
	}
	// Every refill was started by a session, all of which have ended, and
	// gives up now that s.done is: none outlives Shutdown to rotate a
	// password or log in after the caller closed the provisioner.
	s.refills.Wait()
	return closed
}

// Close shuts down without draining: open sessions are told and closed at once.
func (s *Server) Close() int {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return s.Shutdown(ctx)
}

// ActiveSessions reports how many connections are being served.
func (s *Server) ActiveSessions() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.sessions)
}

// addSession records sess so that Shutdown can stop it; it reports false,
// recording nothing, once the server is closing.
func (s *Server) addSession(sess *session) bool { return addUnlessClosing(s, s.sessions, sess) }

func (s *Server) removeSession(sess *session) { removeFrom(s, s.sessions, sess) }

// addUnlessClosing adds v to set, one of s's sets guarded by s.mu, unless s
// is closing; it reports whether it did. Shutdown sets closing under the
// same lock, so nothing joins a set after Shutdown has walked it.
func addUnlessClosing[T comparable](s *Server, set map[T]struct{}, v T) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return false
	}
	set[v] = struct{}{}
	return true
}

// removeFrom deletes v from set, one of s's sets guarded by s.mu.
func removeFrom[T comparable](s *Server, set map[T]struct{}, v T) {
	s.mu.Lock()
	delete(set, v)
	s.mu.Unlock()
}
