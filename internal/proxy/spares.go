package proxy

import (
	"container/list"
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/metrics"
	"github.com/waypoint-proxy/waypoint/internal/pgwire"
)

// Spares configures spare backends: backend sessions opened in the
// background, already logged in as a role that was just used, each handed
// to the next connection of the same identity, database and grant, which
// then pays neither provisioning nor the backend's fork and authentication.
//
// A spare is a new session no client has used: it is handed out once and
// never returned, so no state can pass from one client to another. The
// client's own startup parameters are applied on hand-off, as its startup
// packet would have (set_config), so it sees the ParameterStatus values a
// session started with them shows. A client whose parameters only a real
// start can apply (options other than -c, replication, protocol options)
// takes the normal path. The zero value disables spares.
type Spares struct {
	// PerRole is how many spares are kept for one identity, database and
	// grant. 0 disables spares.
	PerRole int
	// Max bounds spares across roles; beyond it the least recently opened
	// one is closed. 0 means 32.
	Max int
	// IdleTimeout closes a spare not handed out in time. 0 means 60 s.
	IdleTimeout time.Duration
}

// spareApplicationName is a spare's application_name until it is handed
// out: what pg_stat_activity shows for it.
const spareApplicationName = "waypoint spare"

// spare is one idle, logged-in backend session.
type spare struct {
	key   string
	role  string
	up    *pgwire.Upstream
	timer *time.Timer // closes it after IdleTimeout
	elem  *list.Element
}

// sparePool holds the idle spares of one Server. It is safe for concurrent
// use.
type sparePool struct {
	opts Spares

	mu      sync.Mutex
	closed  bool
	byKey   map[string][]*spare
	opening map[string]int // spares being opened, by key
	lru     *list.List     // of *spare, oldest first
	hits    int64
	misses  int64
}

func newSparePool(opts Spares) *sparePool {
	if opts.Max == 0 {
		opts.Max = 32
	}
	if opts.IdleTimeout == 0 {
		opts.IdleTimeout = time.Minute
	}
	return &sparePool{opts: opts, byKey: map[string][]*spare{}, opening: map[string]int{}, lru: list.New()}
}

// enabled reports whether spares are on.
func (p *sparePool) enabled() bool { return p.opts.PerRole > 0 }

// spareKey identifies what a spare may be handed to: the same identity
// (subject and node), database and everything of the decision that shapes
// the role's privileges.
func spareKey(peer identity.Peer, eff authz.Effective) string {
	parts := []string{peer.Subject(), peer.NodeID, eff.Database, string(eff.Preset), boolString(eff.PresetLimited)}
	for _, s := range eff.Schemas {
		parts = append(parts, s.Schema+"="+string(s.Preset))
	}
	parts = append(parts, "\x01")
	parts = append(parts, eff.SQL...)
	return strings.Join(parts, "\x00")
}

func boolString(b bool) string {
	if b {
		return "t"
	}
	return "f"
}

// take removes and returns a spare for key, or nil (a miss).
func (p *sparePool) take(key string) *spare {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := p.byKey[key]
	if len(list) == 0 {
		p.misses++
		return nil
	}
	sp := list[len(list)-1]
	p.removeLocked(sp)
	p.hits++
	return sp
}

// reserve reports whether a spare for key should be opened now, and if so
// counts it as being opened; the caller must call opened or failed.
func (p *sparePool) reserve(key string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || !p.enabled() || len(p.byKey[key])+p.opening[key] >= p.opts.PerRole {
		return false
	}
	p.opening[key]++
	return true
}

// put adds a spare opened for a reservation, evicting the oldest spares
// beyond Max. A spare put after close is closed.
func (p *sparePool) put(sp *spare) {
	p.mu.Lock()
	p.opening[sp.key]--
	if p.opening[sp.key] <= 0 {
		delete(p.opening, sp.key)
	}
	if p.closed {
		p.mu.Unlock()
		sp.up.Conn.Close()
		return
	}
	var evicted []*spare
	for p.lru.Len() >= p.opts.Max {
		old := p.lru.Front().Value.(*spare)
		p.removeLocked(old)
		evicted = append(evicted, old)
	}
	sp.elem = p.lru.PushBack(sp)
	p.byKey[sp.key] = append(p.byKey[sp.key], sp)
	sp.timer = time.AfterFunc(p.opts.IdleTimeout, func() { p.expire(sp) })
	p.mu.Unlock()
	for _, old := range evicted {
		old.up.Conn.Close()
	}
}

// unreserve gives back a reservation whose spare could not be opened.
func (p *sparePool) unreserve(key string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.opening[key]--
	if p.opening[key] <= 0 {
		delete(p.opening, key)
	}
}

// expire closes sp if it is still idle.
func (p *sparePool) expire(sp *spare) {
	p.mu.Lock()
	idle := sp.elem != nil
	if idle {
		p.removeLocked(sp)
	}
	p.mu.Unlock()
	if idle {
		sp.up.Conn.Close()
	}
}

// removeLocked takes sp out of the pool; p.mu is held.
func (p *sparePool) removeLocked(sp *spare) {
	if sp.elem == nil {
		return
	}
	p.lru.Remove(sp.elem)
	sp.elem = nil
	if sp.timer != nil {
		sp.timer.Stop()
	}
	list := p.byKey[sp.key]
	if i := slices.Index(list, sp); i >= 0 {
		list = slices.Delete(list, i, i+1)
	}
	if len(list) == 0 {
		delete(p.byKey, sp.key)
	} else {
		p.byKey[sp.key] = list
	}
}

// flush closes every idle spare; with closing, no spare is kept afterwards.
func (p *sparePool) flush(closing bool) {
	p.mu.Lock()
	var all []*spare
	for e := p.lru.Front(); e != nil; e = e.Next() {
		all = append(all, e.Value.(*spare))
	}
	for _, sp := range all {
		p.removeLocked(sp)
	}
	if closing {
		p.closed = true
	}
	p.mu.Unlock()
	for _, sp := range all {
		sp.up.Conn.Close()
	}
}

// stats returns the idle spares and the hits and misses so far.
func (p *sparePool) stats() (idle int, hits, misses int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lru.Len(), p.hits, p.misses
}

// SpareStats reports the idle spare backends and how many connections found
// one (hits) or not (misses) since the Server started.
func (s *Server) SpareStats() (idle int, hits, misses int64) {
	return s.spares.stats()
}

// spareSettings turns the parameters a connection would send the backend
// (forwardedParams) into the settings Apply makes on a spare: the options'
// -c settings first, then every other parameter, as PostgreSQL applies a
// startup packet. ok is false when the connection cannot use a spare.
func spareSettings(params map[string]string) (settings []pgwire.Setting, ok bool) {
	names := make([]string, 0, len(params))
	for name := range params {
		lower := strings.ToLower(name)
		if lower == "replication" || strings.HasPrefix(lower, "_pq_.") {
			return nil, false
		}
		if lower != "options" {
			names = append(names, name)
		}
	}
	if opts := params["options"]; opts != "" {
		pairs, ok := authz.OptionSettings(opts)
		if !ok {
			return nil, false
		}
		for _, kv := range pairs {
			settings = append(settings, pgwire.Setting{Name: kv[0], Value: kv[1]})
		}
	}
	slices.Sort(names)
	for _, name := range names {
		settings = append(settings, pgwire.Setting{Name: name, Value: params[name]})
	}
	return settings, true
}

// useSpare hands sess a spare of its identity, database and grant, with
// params (what the backend would be sent: forwardedParams) applied, if
// there is one. It reports whether it
// did; a spare that fails to take the parameters is closed (the normal path
// then applies them, and reports a bad one as PostgreSQL does).
func (s *Server) useSpare(ctx context.Context, sess *session, params map[string]string) bool {
	if !s.spares.enabled() {
		return false
	}
	settings, ok := spareSettings(params)
	if !ok {
		return false
	}
	start := time.Now()
	sp := s.spares.take(spareKey(sess.peer, sess.eff))
	s.opts.Metrics.SpareBackends(s.opts.Listener, s.spareCount())
	if sp == nil {
		s.opts.Metrics.SpareHandoff(s.opts.Listener, metrics.SpareMiss)
		return false
	}
	if err := sp.up.Apply(ctx, settings); err != nil {
		s.opts.Metrics.SpareHandoff(s.opts.Listener, metrics.SpareRefused)
		s.log.Info("spare backend refused the client's parameters; using the normal path", "conn", sess.id, "err", err)
		sp.up.Conn.Close()
		return false
	}
	s.opts.Metrics.SpareHandoff(s.opts.Listener, metrics.SpareHit)
	s.stageDone(metrics.StageSpare, start)
	sess.role, sess.up, sess.spare = sp.role, sp.up, true
	return true
}

// spareCount is the number of idle spares, for the gauge.
func (s *Server) spareCount() int {
	idle, _, _ := s.spares.stats()
	return idle
}

// refillSpare opens, in the background, a spare for the identity, database
// and grant sess just used, unless enough are kept or being opened. It
// never delays sess.
func (s *Server) refillSpare(sess *session) {
	key := spareKey(sess.peer, sess.eff)
	if !s.spares.reserve(key) {
		return
	}
	peer, eff := sess.peer, sess.eff
	s.refills.Go(func() { // bounded by SetupTimeout and ended by Shutdown; a spare done after Close is closed by put
		sp, err := s.openSpare(key, peer, eff)
		if err != nil {
			s.spares.unreserve(key)
			s.log.Debug("could not open a spare backend", "login", peer.Subject(), "err", err)
			return
		}
		s.spares.put(sp)
		s.opts.Metrics.SpareBackends(s.opts.Listener, s.spareCount())
	})
}

// openSpare provisions the role (a warm rotation, normally) and logs in as
// it with only the identity's own parameters and spareApplicationName. It
// gives up when Shutdown begins.
func (s *Server) openSpare(key string, peer identity.Peer, eff authz.Effective) (*spare, error) {
	ctx, cancel := context.WithTimeout(s.done, s.opts.SetupTimeout)
	defer cancel()
	cred, err := s.opts.Provisioner.Ensure(ctx, peer, eff)
	if err != nil {
		return nil, err
	}
	defer cred.release()
	params := forwardedParams(map[string]string{"application_name": spareApplicationName}, peer)
	up, err := pgwire.ConnectUpstream(ctx, s.upstreamConfig(eff.Database, cred.Role, cred.Password, params))
	if err != nil {
		return nil, err
	}
	return &spare{key: key, role: cred.Role, up: up}, nil
}
