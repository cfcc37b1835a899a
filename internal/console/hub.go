package console

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/coord"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
)

// Server is one listener of this instance, as the console sees it.
// *proxy.Server implements it.
type Server interface {
	Sessions() []proxy.SessionInfo
	Terminate(ctx context.Context, id string, op proxy.Operator) (proxy.SessionInfo, bool)
	TerminateSubject(ctx context.Context, subject string, op proxy.Operator) []proxy.SessionInfo
	RevalidateSubject(ctx context.Context, subject string, op proxy.Operator) (checked, closed int)
}

// Fleet reaches the other instances sharing a Redis. *coord.Fleet
// implements it.
type Fleet interface {
	Self() coord.Member
	Members(ctx context.Context) ([]coord.Member, error)
	Ask(ctx context.Context, id string, req []byte) ([]byte, error)
	Handle(fn func(ctx context.Context, req []byte) []byte)
}

// HubOptions configure a Hub. Servers is required; Fleet, or else
// Instance, names this instance.
type HubOptions struct {
	// Servers are this instance's listeners.
	Servers []Server
	// Refusals are this instance's recent refusals. Nil means none are
	// kept.
	Refusals *proxy.Refusals
	// Fleet, when set, makes the console show and act on every instance
	// sharing its Redis, and lets them ask this one. Nil means this
	// instance is alone.
	Fleet Fleet
	// Instance describes this instance when there is no Fleet: ID and
	// Hostname (Started defaults to when NewHub ran).
	Instance coord.Member
	// AskTimeout bounds how long another instance may take to answer.
	// Zero means 3 s.
	AskTimeout time.Duration
	// Logger receives warnings about instances that do not answer. Nil
	// means slog.Default().
	Logger *slog.Logger
}

// Hub gathers what the console shows from this instance and, with a Fleet,
// from every other one, and carries out actions wherever the session is.
// It is safe for concurrent use.
type Hub struct {
	opts HubOptions
	self coord.Member
	log  *slog.Logger
}

// NewHub returns a Hub and, with a Fleet, starts answering the other
// instances' requests.
func NewHub(opts HubOptions) (*Hub, error) {
	if len(opts.Servers) == 0 {
		return nil, errors.New("console: HubOptions.Servers is empty")
	}
	if opts.AskTimeout <= 0 {
		opts.AskTimeout = 3 * time.Second
	}
	h := &Hub{opts: opts, log: opts.Logger}
	if h.log == nil {
		h.log = slog.Default()
	}
	h.self = opts.Instance
	if opts.Fleet != nil {
		h.self = opts.Fleet.Self()
		opts.Fleet.Handle(h.answer)
	}
	if h.self.Started.IsZero() {
		h.self.Started = time.Now()
	}
	return h, nil
}

// local is what this instance reports about itself.
type local struct {
	Sessions []Session `json:"sessions"`
	Refusals []Refusal `json:"refusals"`
}

// localView snapshots this instance.
func (h *Hub) localView() local {
	var l local
	for _, srv := range h.opts.Servers {
		for _, s := range srv.Sessions() {
			l.Sessions = append(l.Sessions, fromProxy(h.self.ID, s))
		}
	}
	for _, r := range h.opts.Refusals.Recent() {
		l.Refusals = append(l.Refusals, refusalFromProxy(h.self.ID, r))
	}
	return l
}

// View gathers sessions, identities, instances and refusals from every
// instance. An instance that does not answer within AskTimeout is listed as
// not answering and its sessions are missing (View.Unreachable); an
// unreachable Redis is an error.
func (h *Hub) View(ctx context.Context, f Filter) (View, error) {
	members, err := h.members(ctx)
	if err != nil {
		return View{}, err
	}
	v := View{Instance: h.self.ID, At: time.Now()}
	answers := h.gather(ctx, members, request{Op: opView})
	for i, m := range members {
		inst := Instance{ID: m.ID, Hostname: m.Hostname, Started: m.Started, LastHeartbeat: m.LastSeen, Self: m.Self, Health: HealthOK}
		a := answers[i]
		switch {
		case a.err != nil && !m.Healthy:
			inst.Health = HealthNoHeartbeat
		case a.err != nil:
			inst.Health = HealthNotAnswering
		case !m.Healthy:
			inst.Health = HealthNoHeartbeat
		}
		if a.err != nil {
			v.Unreachable = append(v.Unreachable, m.ID)
		} else {
			n := len(a.view.Sessions)
			inst.Sessions = &n
			v.Sessions = append(v.Sessions, a.view.Sessions...)
			v.Refusals = append(v.Refusals, a.view.Refusals...)
		}
		v.Instances = append(v.Instances, inst)
	}
	v.Identities = identities(v.Sessions)
	v.Sessions = slices.DeleteFunc(v.Sessions, func(s Session) bool { return !f.match(s) })
	slices.SortFunc(v.Sessions, func(a, b Session) int { return a.Started.Compare(b.Started) })
	slices.SortFunc(v.Refusals, func(a, b Refusal) int { return b.Time.Compare(a.Time) })
	return v, nil
}

// members lists the instances: the fleet's, or this one alone.
func (h *Hub) members(ctx context.Context) ([]coord.Member, error) {
	if h.opts.Fleet == nil {
		self := h.self
		self.Self, self.Healthy, self.LastSeen = true, true, time.Now()
		return []coord.Member{self}, nil
	}
	ms, err := h.opts.Fleet.Members(ctx)
	if err != nil {
		return nil, fmt.Errorf("console: list the instances sharing Redis: %w", err)
	}
	if !slices.ContainsFunc(ms, func(m coord.Member) bool { return m.Self }) {
		// Our own heartbeat has not landed (Redis just restarted): still
		// show ourselves.
		self := h.self
		self.Self, self.LastSeen = true, time.Now()
		ms = append([]coord.Member{self}, ms...)
	}
	return ms, nil
}

// answer is one instance's answer to a request.
type answer struct {
	view   local
	result Result
	err    error
}

// gather sends req to every member at once and returns the answers in
// member order. This instance answers itself directly.
func (h *Hub) gather(ctx context.Context, members []coord.Member, req request) []answer {
	out := make([]answer, len(members))
	var wg sync.WaitGroup
	for i, m := range members {
		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i] = h.ask(ctx, m, req)
		}()
	}
	wg.Wait()
	return out
}

// ask runs req on member m.
func (h *Hub) ask(ctx context.Context, m coord.Member, req request) answer {
	if m.Self || h.opts.Fleet == nil {
		return h.run(ctx, req)
	}
	ctx, cancel := context.WithTimeout(ctx, h.opts.AskTimeout)
	defer cancel()
	body, err := h.opts.Fleet.Ask(ctx, m.ID, req.encode())
	if err != nil {
		if m.Healthy {
			h.log.Warn("console: an instance did not answer", "instance", m.ID, "hostname", m.Hostname, "err", err)
		}
		return answer{err: err}
	}
	return decodeAnswer(body)
}

// Terminate ends the session with connection id id wherever it runs. When
// several instances have a session with that id (ids are unique per
// instance only), instance must name one. It returns ErrNotFound when no
// open session matches, and ErrAmbiguous when several do.
func (h *Hub) Terminate(ctx context.Context, id, instance string, by proxy.Operator) (Result, error) {
	v, err := h.View(ctx, Filter{})
	if err != nil {
		return Result{}, err
	}
	var owners []string
	for _, s := range v.Sessions {
		if s.ID == id && (instance == "" || s.Instance == instance) {
			owners = append(owners, s.Instance)
		}
	}
	switch {
	case len(owners) == 0:
		return Result{Action: "terminate", Unreachable: v.Unreachable}, ErrNotFound
	case len(owners) > 1:
		return Result{Action: "terminate"}, ErrAmbiguous
	}
	m := coord.Member{ID: owners[0], Self: owners[0] == h.self.ID, Healthy: true}
	a := h.ask(ctx, m, request{Op: opTerminate, ID: id, By: by})
	if a.err != nil {
		return Result{}, fmt.Errorf("console: instance %s did not confirm: %w", owners[0], a.err)
	}
	if len(a.result.Sessions) == 0 {
		return a.result, ErrNotFound // it ended on its own meanwhile
	}
	return a.result, nil
}

// TerminateLogin ends every session of login (or tags, as Session.Login
// has them) on every instance that answers.
func (h *Hub) TerminateLogin(ctx context.Context, login string, by proxy.Operator) (Result, error) {
	return h.everywhere(ctx, request{Op: opTerminateLogin, Login: login, By: by})
}

// Revalidate re-checks now every relaying session of login on every
// instance that answers.
func (h *Hub) Revalidate(ctx context.Context, login string, by proxy.Operator) (Result, error) {
	return h.everywhere(ctx, request{Op: opRevalidate, Login: login, By: by})
}

// everywhere runs req on every instance and sums the results.
func (h *Hub) everywhere(ctx context.Context, req request) (Result, error) {
	members, err := h.members(ctx)
	if err != nil {
		return Result{}, err
	}
	total := Result{Action: req.Op, Sessions: []Session{}}
	for i, a := range h.gather(ctx, members, req) {
		if a.err != nil {
			total.Unreachable = append(total.Unreachable, members[i].ID)
			continue
		}
		total.Sessions = append(total.Sessions, a.result.Sessions...)
		total.Checked += a.result.Checked
		total.Closed += a.result.Closed
	}
	return total, nil
}

// ErrNotFound: no open session matches.
var ErrNotFound = errors.New("console: no such open session")

// ErrAmbiguous: sessions on several instances have the id asked for.
var ErrAmbiguous = errors.New("console: several instances have a session with this id")
