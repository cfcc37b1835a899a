package proxy

import (
	"errors"
	"sync"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
)

// Refusal is a connection Waypoint ended before relaying it: who tried,
// what they asked for, and what Waypoint told them. It carries the
// client-safe message only; the internal detail stays in the log line with
// the same connection id.
type Refusal struct {
	Time       time.Time
	ID         string // the connection id, as in the log and the client's hint
	Listener   string
	Login      string // the caller's login or tags; "" when WhoIs failed
	Machine    string
	NodeID     string
	ClientAddr string // the caller's tailnet ip:port
	Database   string // "" when the startup message never arrived
	// Reason is the denial's reason for a grant refusal (no_grant,
	// no_listener, no_database, bad_grant, …) and otherwise the failure's
	// kind (limit, protocol, backend_unreachable, shutdown, …).
	Reason string
	// SQLState and Message are the error Waypoint classified for the
	// client (sent to it whenever its startup message had arrived).
	SQLState, Message string
}

// DefaultRefusals is how many refusals NewRefusals keeps when asked for 0.
const DefaultRefusals = 100

// Refusals keeps the most recent refusals of one or more Servers, for
// operators. It is safe for concurrent use; a nil *Refusals records nothing
// and reports none.
type Refusals struct {
	mu    sync.Mutex
	ring  []Refusal
	next  int // where the next refusal goes
	count int // how many of ring are filled
}

// NewRefusals returns a Refusals keeping the last n refusals (n <= 0 means
// DefaultRefusals).
func NewRefusals(n int) *Refusals {
	if n <= 0 {
		n = DefaultRefusals
	}
	return &Refusals{ring: make([]Refusal, n)}
}

// add records r, forgetting the oldest refusal when full.
func (r *Refusals) add(ref Refusal) {
	if r == nil {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ring[r.next] = ref
	r.next = (r.next + 1) % len(r.ring)
	r.count = min(r.count+1, len(r.ring))
}

// Recent returns the recorded refusals, newest first.
func (r *Refusals) Recent() []Refusal {
	if r == nil {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Refusal, 0, r.count)
	for i := 1; i <= r.count; i++ {
		out = append(out, r.ring[(r.next-i+len(r.ring))%len(r.ring)])
	}
	return out
}

// noteRefusal records sess in Options.Refusals when it ended with err
// before relaying. Cancel requests are not refusals.
func (s *Server) noteRefusal(sess *session, err error) {
	if err == nil || s.opts.Refusals == nil || sess.isRelaying() {
		return
	}
	if sess.client != nil && sess.client.Cancel != nil {
		return
	}
	told := clientError(err, "")
	ref := Refusal{
		Time: time.Now(), ID: sess.id, Listener: s.opts.Listener,
		Login: sess.peer.Subject(), Machine: sess.peer.MachineName, NodeID: sess.peer.NodeID,
		ClientAddr: sess.remote, Reason: kindOf(err).String(), SQLState: told.Code, Message: told.Message,
	}
	if sess.client != nil {
		ref.Database = sess.client.Params["database"]
	}
	var d *authz.Denial
	if errors.As(err, &d) {
		ref.Reason = d.Reason.String()
	}
	s.opts.Refusals.add(ref)
}
