package coord_test

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waypoint-proxy/waypoint/internal/coord"
	"github.com/waypoint-proxy/waypoint/internal/coord/redistest"
)

type cancelReq struct{ key, node string }

// collectCancels makes s deliver routed cancels to the returned channel.
func collectCancels(s coord.Store) <-chan cancelReq {
	ch := make(chan cancelReq, 16)
	s.OnCancel(func(key, node string) { ch <- cancelReq{key, node} })
	return ch
}

// wantCancel waits (up to a liveness deadline) for want on ch.
func wantCancel(t *testing.T, ch <-chan cancelReq, want cancelReq) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("OnCancel got %+v, want %+v", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("OnCancel never called; want %+v", want)
	}
}

// wantNoCancel fails if anything is delivered on ch shortly.
func wantNoCancel(t *testing.T, ch <-chan cancelReq) {
	t.Helper()
	select {
	case got := <-ch:
		t.Fatalf("OnCancel got %+v, want no call", got)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestRedisRouteCancel(t *testing.T) {
	a, b := twoInstances(t, redistest.Start(t), coord.RedisOptions{})
	got := collectCancels(a)
	const key = "0000002a1234abcd"
	if err := a.RegisterCancel(t.Context(), key); err != nil {
		t.Fatalf("RegisterCancel: %v", err)
	}

	routed, err := b.RouteCancel(t.Context(), key, "node-7")
	if !routed || err != nil {
		t.Fatalf("B.RouteCancel(registered key) = %t, %v; want true, nil", routed, err)
	}
	wantCancel(t, got, cancelReq{key, "node-7"})

	tests := []struct {
		name string
		from *coord.Redis
		key  string
	}{
		{"unknown key", b, "ffffffffffffffff"},
		{"own key", a, key}, // the owner has no local session for it
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if routed, err := tt.from.RouteCancel(t.Context(), tt.key, "node-7"); routed || err != nil {
				t.Errorf("RouteCancel = %t, %v; want false, nil", routed, err)
			}
		})
	}

	a.UnregisterCancel(key)
	if routed, err := b.RouteCancel(t.Context(), key, "node-7"); routed || err != nil {
		t.Errorf("RouteCancel after UnregisterCancel = %t, %v; want false, nil", routed, err)
	}
	wantNoCancel(t, got)
}

func TestRedisRouteCancelToCrashedOwner(t *testing.T) {
	a, b := twoInstances(t, redistest.Start(t), coord.RedisOptions{})
	if err := a.RegisterCancel(t.Context(), "0000002a1234abcd"); err != nil {
		t.Fatalf("RegisterCancel: %v", err)
	}
	a.Crash() // its owner key outlives it until LeaseTTL, but nobody listens
	if routed, err := b.RouteCancel(t.Context(), "0000002a1234abcd", "node-7"); routed || err != nil {
		t.Errorf("RouteCancel to a crashed owner = %t, %v; want false, nil", routed, err)
	}
}

func TestRedisCancelChannelUntrusted(t *testing.T) {
	srv := redistest.Start(t)
	a := newRedis(t, srv.Addr(), coord.RedisOptions{KeyPrefix: "wp:"})
	got := collectCancels(a)
	if err := a.RegisterCancel(t.Context(), "0000002a1234abcd"); err != nil {
		t.Fatalf("RegisterCancel: %v", err)
	}
	raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
	defer raw.Close()
	channel := "wp:cancel:" + a.InstanceID()
	for _, payload := range []string{
		`not json`,
		`{"key":"","node":"n"}`,
		`{"key":"ffffffffffffffff","node":"n"}`, // not registered here
		`{"key":"0000002a1234abcd","node":"n1"}`,
	} {
		if err := raw.Publish(t.Context(), channel, payload).Err(); err != nil {
			t.Fatalf("PUBLISH: %v", err)
		}
	}
	// Messages arrive in order: only the last one is delivered.
	wantCancel(t, got, cancelReq{"0000002a1234abcd", "n1"})
	wantNoCancel(t, got)
}

func TestMemoryRouteCancel(t *testing.T) {
	m := coord.NewMemory()
	defer m.Close()
	got := collectCancels(m)
	if err := m.RegisterCancel(t.Context(), "0000002a1234abcd"); err != nil {
		t.Fatalf("RegisterCancel: %v", err)
	}
	if routed, err := m.RouteCancel(t.Context(), "0000002a1234abcd", "node-7"); routed || err != nil {
		t.Errorf("RouteCancel = %t, %v; want false, nil", routed, err)
	}
	wantNoCancel(t, got)
}
