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

	client *pgwire.Client
	peer   identity.Peer
	eff    authz.Effective
	role   string
	up     *pgwire.Upstream
	spare  bool // up was a spare backend
	key    pgwire.CancelKey
	result relay.Result

	mu      sync.Mutex
	cancel  context.CancelFunc // stops the relay; nil until relaying
	stopErr error              // why the session was stopped from outside
	watched bool               // logged in upstream: revalidation covers it (see Server.watch)
	limits  *liveLimits        // enforced while relaying; nil before and after
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
