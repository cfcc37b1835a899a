package proxy

import (
	"context"
	"net"
	"sync"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
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
	pass   uint64 // Server.passes when the session began, before its WhoIs

	client    *pgwire.Client
	peer      identity.Peer
	maxPreset authz.Preset // the client's waypoint_presets request, parsed once by decide; "" = none
	eff       authz.Effective
	role      string
	up        *pgwire.Upstream
	spare     bool // up was a spare backend
	key       pgwire.CancelKey
	result    relay.Result
	bytes     relay.Counters // live byte counts, for operators

	mu       sync.Mutex
	cancel   context.CancelFunc // stops the relay; nil until relaying
	relayEnd chan struct{}      // closed when the relay has returned; nil until relaying
	stopErr  error              // why the session was stopped from outside
	watched  bool               // logged in upstream: revalidation covers it (see Server.watch)
	relaying bool               // login done, bytes flowing
	reached  stage              // how far setup got; see stage
	limits   *liveLimits        // enforced while relaying; nil before and after
}

// stage is how far a session's setup got. The serving goroutine publishes
// each stage under mu after writing the fields it covers, so another
// goroutine that reads the stage under mu may then read those fields.
type stage int

const (
	stageAccepted   stage = iota // id, conn, remote, start
	stageIdentified              // peer
	stageStarted                 // client (the startup message)
	stageLoggedIn                // maxPreset, eff, role, up
)

// advance publishes that setup reached st.
func (sess *session) advance(st stage) {
	sess.mu.Lock()
	sess.reached = st
	sess.mu.Unlock()
}

// isRelaying reports whether the session is past login and relaying.
func (sess *session) isRelaying() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.relaying
}

// isWatched reports whether revalidation covers the session: it is logged in
// upstream, about to relay or relaying.
func (sess *session) isWatched() bool {
	sess.mu.Lock()
	defer sess.mu.Unlock()
	return sess.watched
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
