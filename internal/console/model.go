package console

import (
	"slices"
	"strings"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/proxy"
)

// This file is the console's data model: the JSON the API serves, the page
// renders and the CLI prints. Field names are the API's contract
// (docs/console.md). Nothing here carries a password, a verifier, a
// cancel key or a statement text.

// Session is one open connection on one instance.
type Session struct {
	ID       string `json:"id"`
	Instance string `json:"instance"` // the instance ID serving it
	Listener string `json:"listener"`
	// Login is the caller's login name, or for a tagged node its tags
	// joined by ","; Tags are the node's tags (tagged nodes only).
	Login         string    `json:"login"`
	Tags          []string  `json:"tags,omitempty"`
	Machine       string    `json:"machine"`
	Node          string    `json:"node"`
	ClientAddr    string    `json:"client_addr"`
	Database      string    `json:"database"`
	Role          string    `json:"role"`
	Preset        string    `json:"preset"`
	PresetLimited bool      `json:"preset_limited"`
	MaxConns      int       `json:"max_conns"` // 0: unlimited
	Started       time.Time `json:"started"`
	BytesIn       int64     `json:"bytes_in"`  // client → backend
	BytesOut      int64     `json:"bytes_out"` // backend → client
	State         string    `json:"state"`     // setting_up, relaying, draining, closing
	BackendPID    uint32    `json:"backend_pid"`
}

// Identity is one caller's use across every instance.
type Identity struct {
	Login     string        `json:"login"`
	Machines  []string      `json:"machines"`
	Sessions  int           `json:"sessions"`
	BytesIn   int64         `json:"bytes_in"`
	BytesOut  int64         `json:"bytes_out"`
	Listeners []ListenerUse `json:"listeners"`
}

// ListenerUse is an identity's sessions on one listener against its limit
// there (max_conns is counted per listener).
type ListenerUse struct {
	Listener string `json:"listener"`
	Sessions int    `json:"sessions"`
	MaxConns int    `json:"max_conns"` // 0: unlimited
}

// Instance is one Waypoint process.
type Instance struct {
	ID            string    `json:"id"`
	Hostname      string    `json:"hostname"`
	Started       time.Time `json:"started"`
	LastHeartbeat time.Time `json:"last_heartbeat"`
	// Health is HealthOK, HealthNoHeartbeat or HealthNotAnswering.
	Health string `json:"health"`
	// Sessions is how many sessions it serves; nil when it did not answer.
	Sessions *int `json:"sessions"`
	// Self marks the instance that served this answer.
	Self bool `json:"self"`
}

// Instance health values.
const (
	HealthOK           = "ok"            // heartbeat fresh, answered
	HealthNoHeartbeat  = "no_heartbeat"  // silent for three heartbeat intervals
	HealthNotAnswering = "not_answering" // heartbeat fresh, but it did not answer in time
)

// Refusal is a connection refused before relaying.
type Refusal struct {
	Time       time.Time `json:"time"`
	Instance   string    `json:"instance"`
	ID         string    `json:"id"`
	Listener   string    `json:"listener"`
	Login      string    `json:"login"`
	Machine    string    `json:"machine"`
	Node       string    `json:"node"`
	ClientAddr string    `json:"client_addr"`
	Database   string    `json:"database"`
	Reason     string    `json:"reason"`
	SQLState   string    `json:"sqlstate"`
	Message    string    `json:"message"`
}

// View is everything the console shows, gathered from every instance at
// one moment.
type View struct {
	Sessions   []Session
	Identities []Identity
	Instances  []Instance
	Refusals   []Refusal
	// Unreachable lists instances whose sessions and refusals are missing
	// because they did not answer.
	Unreachable []string
	// Instance is the ID of the instance that gathered the view.
	Instance string
	At       time.Time
}

// Result is what an action did.
type Result struct {
	// Action is "terminate", "terminate_identity" or "revalidate".
	Action string `json:"action"`
	// Sessions are the sessions terminated, as they were just before.
	Sessions []Session `json:"sessions"`
	// Checked and Closed count the sessions a revalidation re-checked and
	// closed.
	Checked int `json:"checked,omitempty"`
	Closed  int `json:"closed,omitempty"`
	// Unreachable lists instances that did not answer: their sessions
	// were not acted on.
	Unreachable []string `json:"unreachable,omitempty"`
}

// Filter selects sessions; an empty field matches everything.
type Filter struct {
	Listener string
	Login    string
}

// match reports whether s passes f.
func (f Filter) match(s Session) bool {
	return (f.Listener == "" || s.Listener == f.Listener) && (f.Login == "" || s.Login == f.Login)
}

// fromProxy converts a proxy session snapshot of instance.
func fromProxy(instance string, in proxy.SessionInfo) Session {
	return Session{
		ID: in.ID, Instance: instance, Listener: in.Listener, Login: in.Login, Tags: in.Tags,
		Machine: in.Machine, Node: in.NodeID, ClientAddr: in.ClientAddr, Database: in.Database,
		Role: in.Role, Preset: string(in.Preset), PresetLimited: in.PresetLimited, MaxConns: in.MaxConns,
		Started: in.Started, BytesIn: in.BytesIn, BytesOut: in.BytesOut, State: string(in.State),
		BackendPID: in.BackendPID,
	}
}

// refusalFromProxy converts a proxy refusal of instance.
func refusalFromProxy(instance string, in proxy.Refusal) Refusal {
	return Refusal{
		Time: in.Time, Instance: instance, ID: in.ID, Listener: in.Listener, Login: in.Login,
		Machine: in.Machine, Node: in.NodeID, ClientAddr: in.ClientAddr, Database: in.Database,
		Reason: in.Reason, SQLState: in.SQLState, Message: in.Message,
	}
}

// identities sums sessions per login, busiest first. Sessions still being
// identified (no login yet) are left out.
func identities(sessions []Session) []Identity {
	byLogin := map[string]*Identity{}
	var out []*Identity
	for _, s := range sessions {
		if s.Login == "" {
			continue
		}
		id := byLogin[s.Login]
		if id == nil {
			id = &Identity{Login: s.Login}
			byLogin[s.Login] = id
			out = append(out, id)
		}
		id.add(s)
	}
	result := make([]Identity, len(out))
	for i, id := range out {
		result[i] = *id
	}
	slices.SortFunc(result, func(a, b Identity) int {
		if a.Sessions != b.Sessions {
			return b.Sessions - a.Sessions
		}
		return strings.Compare(a.Login, b.Login)
	})
	return result
}

// add counts s in id.
func (id *Identity) add(s Session) {
	id.Sessions++
	id.BytesIn += s.BytesIn
	id.BytesOut += s.BytesOut
	if s.Machine != "" && !slices.Contains(id.Machines, s.Machine) {
		id.Machines = append(id.Machines, s.Machine)
		slices.Sort(id.Machines)
	}
	i := slices.IndexFunc(id.Listeners, func(u ListenerUse) bool { return u.Listener == s.Listener })
	if i < 0 {
		id.Listeners = append(id.Listeners, ListenerUse{Listener: s.Listener})
		slices.SortFunc(id.Listeners, func(a, b ListenerUse) int { return strings.Compare(a.Listener, b.Listener) })
		i = slices.IndexFunc(id.Listeners, func(u ListenerUse) bool { return u.Listener == s.Listener })
	}
	u := &id.Listeners[i]
	u.Sessions++
	if s.MaxConns > 0 && (u.MaxConns == 0 || s.MaxConns < u.MaxConns) {
		u.MaxConns = s.MaxConns
	}
}
