package console

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/coord"
	"github.com/waypoint-proxy/waypoint/internal/proxy"
)

var ops = proxy.Operator{Login: "ops@example.com", Machine: "ops-laptop", NodeID: "nOPS", Via: "tailnet"}

func info(id, login, listener string, started time.Time) proxy.SessionInfo {
	return proxy.SessionInfo{ID: id, Listener: listener, Login: login, Machine: "m-" + login, Database: "appdb",
		Role: "wp_x", Preset: authz.Readonly, MaxConns: 5, Started: started, BytesIn: 10, BytesOut: 100, State: proxy.StateRelaying, BackendPID: 7}
}

// twoHubs wires two instances, each with one listener, through a fake fleet.
func twoHubs(t *testing.T) (a, b *Hub, sa, sb *fakeServer, net *fakeNet) {
	t.Helper()
	net = &fakeNet{down: map[string]bool{}, stale: map[string]bool{}}
	t0 := time.Now().Add(-time.Minute)
	sa = &fakeServer{sessions: []proxy.SessionInfo{info("1-a", "alice@example.com", "pg-main", t0)}}
	sb = &fakeServer{sessions: []proxy.SessionInfo{
		info("1-b", "alice@example.com", "pg-main", t0.Add(time.Second)),
		info("2-b", "bob@example.com", "pg-other", t0.Add(2*time.Second)),
	}}
	refusals := proxy.NewRefusals(4)
	var err error
	a, err = NewHub(HubOptions{Servers: []Server{sa}, Fleet: net.join("inst-a", "waypoint-a"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	b, err = NewHub(HubOptions{Servers: []Server{sb}, Refusals: refusals, Fleet: net.join("inst-b", "waypoint-b"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return a, b, sa, sb, net
}

// TestHub_ViewAcrossInstances: one instance's view holds every instance's
// sessions and identities, each session tagged with its instance.
func TestHub_ViewAcrossInstances(t *testing.T) {
	a, _, _, _, _ := twoHubs(t)
	v, err := a.View(context.Background(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, s := range v.Sessions {
		got = append(got, s.ID+"@"+s.Instance)
	}
	if strings.Join(got, " ") != "1-a@inst-a 1-b@inst-b 2-b@inst-b" {
		t.Errorf("sessions = %v, want every instance's, oldest first", got)
	}
	if len(v.Instances) != 2 || !v.Instances[0].Self || v.Instances[1].Self || *v.Instances[0].Sessions != 1 || *v.Instances[1].Sessions != 2 ||
		v.Instances[1].Hostname != "waypoint-b" || v.Instances[1].Health != HealthOK {
		t.Errorf("instances = %+v", v.Instances)
	}
	if len(v.Identities) != 2 || v.Identities[0].Login != "alice@example.com" || v.Identities[0].Sessions != 2 ||
		v.Identities[0].Listeners[0] != (ListenerUse{Listener: "pg-main", Sessions: 2, MaxConns: 5}) {
		t.Errorf("identities = %+v", v.Identities)
	}
	v, _ = a.View(context.Background(), Filter{Login: "bob@example.com"})
	if len(v.Sessions) != 1 || v.Sessions[0].ID != "2-b" || len(v.Identities) != 2 {
		t.Errorf("filtered by login: sessions %+v, identities %d (want bob's session, every identity)", v.Sessions, len(v.Identities))
	}
}

// TestHub_UnreachableInstance: an instance that does not answer is listed
// with its health, and the rest of the view is still there.
func TestHub_UnreachableInstance(t *testing.T) {
	a, _, _, _, net := twoHubs(t)
	net.down["inst-b"] = true
	v, err := a.View(context.Background(), Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Sessions) != 1 || len(v.Unreachable) != 1 || v.Unreachable[0] != "inst-b" {
		t.Errorf("view with b down: sessions %d, unreachable %v", len(v.Sessions), v.Unreachable)
	}
	if in := v.Instances[1]; in.Health != HealthNotAnswering || in.Sessions != nil {
		t.Errorf("b with a fresh heartbeat that does not answer = %+v, want not_answering, sessions unknown", in)
	}
	net.stale["inst-b"] = true
	v, _ = a.View(context.Background(), Filter{})
	if in := v.Instances[1]; in.Health != HealthNoHeartbeat {
		t.Errorf("b without heartbeat = %+v, want no_heartbeat", in)
	}
}

// TestHub_TerminateWhereTheSessionLives: a session of another instance is
// ended there, with the operator; an unknown id is ErrNotFound; an id two
// instances share needs the instance.
func TestHub_TerminateWhereTheSessionLives(t *testing.T) {
	a, _, sa, sb, _ := twoHubs(t)
	ctx := context.Background()
	res, err := a.Terminate(ctx, "2-b", "", ops)
	if err != nil || len(res.Sessions) != 1 || res.Sessions[0].Instance != "inst-b" {
		t.Fatalf("Terminate(2-b) = %+v, %v", res, err)
	}
	if len(sb.ended) != 1 || sb.ended[0] != "2-b by ops@example.com" || len(sa.ended) != 0 {
		t.Errorf("ended on a: %v, on b: %v; want 2-b on b by ops", sa.ended, sb.ended)
	}
	if _, err := a.Terminate(ctx, "9-z", "", ops); !errors.Is(err, ErrNotFound) {
		t.Errorf("Terminate(unknown) = %v, want ErrNotFound", err)
	}
	sb.sessions = append(sb.sessions, info("1-a", "carol@example.com", "pg-main", time.Now()))
	if _, err := a.Terminate(ctx, "1-a", "", ops); !errors.Is(err, ErrAmbiguous) {
		t.Errorf("Terminate(id on both) = %v, want ErrAmbiguous", err)
	}
	if res, err := a.Terminate(ctx, "1-a", "inst-b", ops); err != nil || res.Sessions[0].Login != "carol@example.com" {
		t.Errorf("Terminate(1-a on inst-b) = %+v, %v; want carol's session", res, err)
	}
}

// TestHub_IdentityActionsEverywhere: ending or re-checking an identity
// reaches every instance that answers, and says which did not.
func TestHub_IdentityActionsEverywhere(t *testing.T) {
	a, _, sa, sb, net := twoHubs(t)
	ctx := context.Background()
	res, err := a.Revalidate(ctx, "alice@example.com", ops)
	if err != nil || res.Checked != 2 || len(sa.rechecked) != 1 || len(sb.rechecked) != 1 {
		t.Errorf("Revalidate = %+v, %v (a %v, b %v); want 2 checked on both", res, err, sa.rechecked, sb.rechecked)
	}
	res, err = a.TerminateLogin(ctx, "alice@example.com", ops)
	if err != nil || len(res.Sessions) != 2 || len(sa.sessions) != 0 || len(sb.sessions) != 1 {
		t.Errorf("TerminateLogin = %+v, %v; want alice's two sessions ended, bob's kept", res, err)
	}
	net.down["inst-b"] = true
	res, _ = a.TerminateLogin(ctx, "bob@example.com", ops)
	if len(res.Sessions) != 0 || len(res.Unreachable) != 1 {
		t.Errorf("TerminateLogin with b down = %+v, want nothing ended and b unreachable", res)
	}
}

// TestHub_AnswerRefusesBadRequests: a request from the fleet must be
// well-formed and name an operator before anything is acted on.
func TestHub_AnswerRefusesBadRequests(t *testing.T) {
	_, b, _, sb, _ := twoHubs(t)
	for _, req := range []string{`not json`, `{"op":"terminate","id":"1-b"}`, `{"op":"drop_tables"}`} {
		got := string(b.answer(context.Background(), []byte(req)))
		if !strings.Contains(got, `"error"`) {
			t.Errorf("answer(%s) = %s, want an error", req, got)
		}
	}
	if len(sb.ended) != 0 {
		t.Errorf("a bad request ended %v", sb.ended)
	}
}

// TestHub_Alone: without a fleet the hub is its own single instance.
func TestHub_Alone(t *testing.T) {
	s := &fakeServer{sessions: []proxy.SessionInfo{info("1-a", "alice@example.com", "pg-main", time.Now())}}
	h, err := NewHub(HubOptions{Servers: []Server{s}, Instance: coord.Member{ID: "solo", Hostname: "waypoint-db"}})
	if err != nil {
		t.Fatal(err)
	}
	v, err := h.View(context.Background(), Filter{})
	if err != nil || len(v.Instances) != 1 || v.Instances[0].ID != "solo" || !v.Instances[0].Self || v.Instances[0].Health != HealthOK || len(v.Sessions) != 1 {
		t.Fatalf("View alone = %+v, %v", v, err)
	}
	if res, err := h.Terminate(context.Background(), "1-a", "", ops); err != nil || len(res.Sessions) != 1 {
		t.Errorf("Terminate alone = %+v, %v", res, err)
	}
	if _, err := NewHub(HubOptions{}); err == nil {
		t.Error("NewHub without servers succeeded")
	}
}

func TestIdentities(t *testing.T) {
	s := func(login, listener, machine string, max int) Session {
		return Session{Login: login, Listener: listener, Machine: machine, MaxConns: max, BytesIn: 1, BytesOut: 2}
	}
	got := identities([]Session{
		s("bob", "pg-main", "desk", 0),
		s("alice", "pg-main", "laptop", 10),
		s("alice", "pg-other", "laptop", 0),
		s("alice", "pg-main", "phone", 3),
		s("", "pg-main", "", 0), // not identified yet
	})
	if len(got) != 2 || got[0].Login != "alice" || got[1].Login != "bob" {
		t.Fatalf("identities = %+v, want alice then bob", got)
	}
	a := got[0]
	if a.Sessions != 3 || a.BytesIn != 3 || a.BytesOut != 6 || strings.Join(a.Machines, ",") != "laptop,phone" {
		t.Errorf("alice = %+v", a)
	}
	want := []ListenerUse{{"pg-main", 2, 3}, {"pg-other", 1, 0}}
	if len(a.Listeners) != 2 || a.Listeners[0] != want[0] || a.Listeners[1] != want[1] {
		t.Errorf("alice's listeners = %+v, want %+v (strictest limit per listener)", a.Listeners, want)
	}
}
