package coord_test

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waypoint-proxy/waypoint/internal/coord"
	"github.com/waypoint-proxy/waypoint/internal/coord/redistest"
)

// newFleet joins a fleet on srv as id, closed at the test's end.
func newFleet(t *testing.T, srv *redistest.Server, id, hostname string, mod func(*coord.FleetOptions)) *coord.Fleet {
	t.Helper()
	opts := coord.FleetOptions{Addr: srv.Addr(), InstanceID: id, Hostname: hostname, Interval: 100 * time.Millisecond, DialTimeout: 500 * time.Millisecond}
	if mod != nil {
		mod(&opts)
	}
	f, err := coord.NewFleet(t.Context(), opts)
	if err != nil {
		t.Fatalf("NewFleet(%s): %v", id, err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// echo answers every request with {"from": id, "got": request}.
func echo(id string) func(context.Context, []byte) []byte {
	return func(_ context.Context, req []byte) []byte {
		b, _ := json.Marshal(map[string]any{"from": id, "got": json.RawMessage(req)})
		return b
	}
}

func memberIDs(ms []coord.Member) string {
	var ids []string
	for _, m := range ms {
		ids = append(ids, m.ID)
	}
	return strings.Join(ids, ",")
}

// TestFleet_MembersAndAsk: two instances on one Redis see each other, with
// host name, start time and a fresh heartbeat, and answer each other's
// requests; asking oneself needs no round trip.
func TestFleet_MembersAndAsk(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	srv := redistest.Start(t)
	started := time.Now().Add(-time.Hour).Truncate(time.Millisecond)
	a := newFleet(t, srv, "a", "waypoint-a", func(o *coord.FleetOptions) { o.Started = started })
	b := newFleet(t, srv, "b", "waypoint-b", nil)
	a.Handle(echo("a"))
	b.Handle(echo("b"))

	ms, err := a.Members(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if memberIDs(ms) != "a,b" {
		t.Fatalf("Members = %s, want a,b (start order)", memberIDs(ms))
	}
	if m := ms[0]; !m.Self || m.Hostname != "waypoint-a" || !m.Started.Equal(started) || !m.Healthy || m.Age > time.Second {
		t.Errorf("member a as seen by a = %+v", m)
	}
	if m := ms[1]; m.Self || m.Hostname != "waypoint-b" || !m.Healthy || m.LastSeen.IsZero() {
		t.Errorf("member b as seen by a = %+v", m)
	}

	for _, tt := range []struct {
		name     string
		from     *coord.Fleet
		to, want string
	}{
		{"a asks b", a, "b", `{"from":"b","got":{"op":"x"}}`},
		{"b asks a", b, "a", `{"from":"a","got":{"op":"x"}}`},
		{"a asks itself", a, "a", `{"from":"a","got":{"op":"x"}}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.from.Ask(ctx, tt.to, []byte(`{"op":"x"}`))
			if err != nil || string(got) != tt.want {
				t.Errorf("Ask = %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// TestFleet_ConcurrentAsks: replies reach the right caller.
func TestFleet_ConcurrentAsks(t *testing.T) {
	srv := redistest.Start(t)
	a := newFleet(t, srv, "a", "waypoint-a", nil)
	b := newFleet(t, srv, "b", "waypoint-b", nil)
	b.Handle(func(_ context.Context, req []byte) []byte { return req })
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for i := range 100 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := []byte(`{"n":` + strconv.Itoa(i) + `}`)
			got, err := a.Ask(ctx, "b", req)
			if err != nil || string(got) != string(req) {
				t.Errorf("Ask(%s) = %s, %v", req, got, err)
			}
		}()
	}
	wg.Wait()
}

// TestFleet_Departures: a closed instance leaves the list at once and is no
// longer listening; a crashed one stays, unhealthy, until forgotten.
func TestFleet_Departures(t *testing.T) {
	srv := redistest.Start(t)
	forget := func(o *coord.FleetOptions) { o.Forget = 2 * time.Second }
	a := newFleet(t, srv, "a", "waypoint-a", forget)
	b := newFleet(t, srv, "b", "waypoint-b", forget)
	c := newFleet(t, srv, "c", "waypoint-c", forget)
	c.Handle(echo("c"))

	b.Close()
	if ms, _ := a.Members(t.Context()); memberIDs(ms) != "a,c" {
		t.Errorf("after b closed: Members = %s, want a,c", memberIDs(ms))
	}
	if _, err := a.Ask(t.Context(), "b", []byte(`{}`)); !errors.Is(err, coord.ErrNotListening) {
		t.Errorf("Ask to a closed instance: %v, want ErrNotListening", err)
	}

	c.Crash()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ms, err := a.Members(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if len(ms) == 2 && ms[1].ID == "c" && !ms[1].Healthy {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("crashed c never became unhealthy: %+v", ms)
		}
		time.Sleep(50 * time.Millisecond)
	}
	for {
		ms, _ := a.Members(t.Context())
		if memberIDs(ms) == "a" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("crashed c never forgotten: %+v", ms)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestFleet_AskTimesOut: an instance that does not answer in time (no
// handler, or a slow one) fails the Ask with the context's error.
func TestFleet_AskTimesOut(t *testing.T) {
	srv := redistest.Start(t)
	a := newFleet(t, srv, "a", "waypoint-a", nil)
	b := newFleet(t, srv, "b", "waypoint-b", nil)
	b.Handle(func(ctx context.Context, req []byte) []byte {
		<-ctx.Done()
		return []byte(`{}`)
	})
	ctx, cancel := context.WithTimeout(t.Context(), 200*time.Millisecond)
	defer cancel()
	if _, err := a.Ask(ctx, "b", []byte(`{}`)); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Ask to a slow instance: %v, want DeadlineExceeded", err)
	}
	if _, err := a.Ask(t.Context(), "a", []byte(`{}`)); err == nil {
		t.Error("Ask to an instance without a handler succeeded")
	}
	if _, err := a.Ask(t.Context(), "b", []byte(`not json`)); err == nil {
		t.Error("Ask with a request that is not JSON succeeded")
	}
}

// TestFleet_HostileMessages: anything on the channels that is not a
// well-formed, bounded envelope is reported and dropped, and the instance
// keeps answering.
func TestFleet_HostileMessages(t *testing.T) {
	srv := redistest.Start(t)
	var mu sync.Mutex
	var reported []string
	a := newFleet(t, srv, "a", "waypoint-a", nil)
	b := newFleet(t, srv, "b", "waypoint-b", func(o *coord.FleetOptions) {
		o.OnError = func(err error) { mu.Lock(); reported = append(reported, err.Error()); mu.Unlock() }
	})
	b.Handle(echo("b"))
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	for _, payload := range []string{"", "{", `{"id":"x"}`, strings.Repeat("x", 70<<10)} {
		raw.Publish(t.Context(), "waypoint:fleet:ask:b", payload)
		raw.Publish(t.Context(), "waypoint:fleet:reply:b", payload)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	if got, err := a.Ask(ctx, "b", []byte(`{}`)); err != nil || !strings.Contains(string(got), `"from":"b"`) {
		t.Errorf("Ask after hostile messages = %s, %v", got, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reported) < 8 {
		t.Errorf("reported %d errors for 8 hostile messages: %q", len(reported), reported)
	}
}

func TestNewFleetErrors(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop(t)
	tests := []struct {
		name            string
		opts            coord.FleetOptions
		want            string
		wantUnavailable bool
	}{
		{"no address", coord.FleetOptions{Hostname: "h"}, "address is empty", false},
		{"no hostname", coord.FleetOptions{Addr: "127.0.0.1:1"}, "hostname is empty", false},
		{"tiny interval", coord.FleetOptions{Addr: "127.0.0.1:1", Hostname: "h", Interval: time.Millisecond}, "interval", false},
		{"unreachable", coord.FleetOptions{Addr: srv.Addr(), Hostname: "h", DialTimeout: 200 * time.Millisecond}, "unavailable", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := coord.NewFleet(t.Context(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewFleet: got %v, want an error containing %q", err, tt.want)
			}
			if errors.Is(err, coord.ErrUnavailable) != tt.wantUnavailable {
				t.Errorf("errors.Is(%v, ErrUnavailable) = %v, want %v", err, !tt.wantUnavailable, tt.wantUnavailable)
			}
		})
	}
}
