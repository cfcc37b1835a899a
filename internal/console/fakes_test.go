package console

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/coord"
	"github.com/waypoint-proxy/waypoint/internal/identity"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
)

// fakeResolver answers WhoIs from a table keyed by IP.
type fakeResolver map[string]identity.Peer

func (f fakeResolver) WhoIs(_ context.Context, remote string) (identity.Peer, error) {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return identity.Peer{}, err
	}
	p, ok := f[host]
	if !ok {
		return identity.Peer{}, errors.New("unknown peer")
	}
	return p, nil
}

// fakeSource is a scripted Source that records the actions it was asked
// for.
type fakeSource struct {
	mu      sync.Mutex
	view    View
	err     error
	actions []string
	result  Result
	actErr  error
}

func (f *fakeSource) View(_ context.Context, flt Filter) (View, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v := f.view
	var ss []Session
	for _, s := range v.Sessions {
		if flt.match(s) {
			ss = append(ss, s)
		}
	}
	v.Sessions = ss
	return v, f.err
}

func (f *fakeSource) record(a string) (Result, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions = append(f.actions, a)
	return f.result, f.actErr
}

func (f *fakeSource) Terminate(_ context.Context, id, instance string, by proxy.Operator) (Result, error) {
	return f.record("terminate " + id + " @" + instance + " by " + by.Login + " via " + by.Via)
}

func (f *fakeSource) TerminateLogin(_ context.Context, login string, by proxy.Operator) (Result, error) {
	return f.record("terminate_identity " + login + " by " + by.Login)
}

func (f *fakeSource) Revalidate(_ context.Context, login string, by proxy.Operator) (Result, error) {
	return f.record("revalidate " + login + " by " + by.Login)
}

func (f *fakeSource) recorded() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.actions...)
}

// fakeServer is a scripted listener.
type fakeServer struct {
	mu        sync.Mutex
	sessions  []proxy.SessionInfo
	ended     []string
	rechecked []string
}

func (f *fakeServer) Sessions() []proxy.SessionInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]proxy.SessionInfo(nil), f.sessions...)
}

func (f *fakeServer) Terminate(_ context.Context, id string, op proxy.Operator) (proxy.SessionInfo, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, s := range f.sessions {
		if s.ID == id {
			f.sessions = append(f.sessions[:i], f.sessions[i+1:]...)
			f.ended = append(f.ended, id+" by "+op.Login)
			return s, true
		}
	}
	return proxy.SessionInfo{}, false
}

func (f *fakeServer) TerminateSubject(_ context.Context, subject string, op proxy.Operator) []proxy.SessionInfo {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out, keep []proxy.SessionInfo
	for _, s := range f.sessions {
		if s.Login == subject {
			out = append(out, s)
			f.ended = append(f.ended, s.ID+" by "+op.Login)
		} else {
			keep = append(keep, s)
		}
	}
	f.sessions = keep
	return out
}

func (f *fakeServer) RevalidateSubject(_ context.Context, subject string, op proxy.Operator) (int, int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, s := range f.sessions {
		if s.Login == subject {
			n++
		}
	}
	f.rechecked = append(f.rechecked, subject+" by "+op.Login)
	return n, 0
}

// fakeFleet connects Hubs in memory: Ask calls the member's handler, or
// fails for members marked down.
type fakeFleet struct {
	self    coord.Member
	net     *fakeNet
	handler func(context.Context, []byte) []byte
}

type fakeNet struct {
	mu      sync.Mutex
	members []*fakeFleet
	down    map[string]bool
	stale   map[string]bool
}

func (n *fakeNet) join(id, hostname string) *fakeFleet {
	n.mu.Lock()
	defer n.mu.Unlock()
	f := &fakeFleet{self: coord.Member{ID: id, Hostname: hostname, Started: time.Unix(1700000000, 0).Add(time.Duration(len(n.members)) * time.Minute), Self: true, Healthy: true}, net: n}
	n.members = append(n.members, f)
	return f
}

func (f *fakeFleet) Self() coord.Member { return f.self }

func (f *fakeFleet) Members(context.Context) ([]coord.Member, error) {
	f.net.mu.Lock()
	defer f.net.mu.Unlock()
	var out []coord.Member
	for _, m := range f.net.members {
		mm := m.self
		mm.Self = m == f
		mm.LastSeen = time.Now()
		mm.Healthy = !f.net.stale[mm.ID]
		out = append(out, mm)
	}
	return out, nil
}

func (f *fakeFleet) Ask(ctx context.Context, id string, req []byte) ([]byte, error) {
	f.net.mu.Lock()
	var target *fakeFleet
	for _, m := range f.net.members {
		if m.self.ID == id {
			target = m
		}
	}
	down := f.net.down[id]
	f.net.mu.Unlock()
	if target == nil || down || target.handler == nil {
		return nil, coord.ErrNotListening
	}
	return target.handler(ctx, req), nil
}

func (f *fakeFleet) Handle(fn func(context.Context, []byte) []byte) { f.handler = fn }
