package coord_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/waypoint-proxy/waypoint/internal/coord"
	"github.com/waypoint-proxy/waypoint/internal/coord/redistest"
	"github.com/waypoint-proxy/waypoint/internal/testkit"
)

// twoInstances returns two stores with distinct instance IDs on one server.
func twoInstances(t *testing.T, srv *redistest.Server, opts coord.RedisOptions) (a, b *coord.Redis) {
	t.Helper()
	opts.InstanceID = "instance-a"
	a = newRedis(t, srv.Addr(), opts)
	opts.InstanceID = "instance-b"
	b = newRedis(t, srv.Addr(), opts)
	return a, b
}

func TestRedisTwoInstancesShareLimit(t *testing.T) {
	a, b := twoInstances(t, redistest.Start(t), coord.RedisOptions{})
	const subject, max = "pg-main/alice@example.com", 2
	relA, err := a.Acquire(t.Context(), subject, max)
	if err != nil {
		t.Fatalf("A.Acquire: %v", err)
	}
	if _, err := b.Acquire(t.Context(), subject, max); err != nil {
		t.Fatalf("B.Acquire: %v", err)
	}
	for name, s := range map[string]*coord.Redis{"A": a, "B": b} {
		if _, err := s.Acquire(t.Context(), subject, max); !errors.Is(err, coord.ErrLimit) {
			t.Errorf("third Acquire on %s: %v, want ErrLimit", name, err)
		}
		wantCount(t, s, subject, max)
	}
	relA()
	if _, err := b.Acquire(t.Context(), subject, max); err != nil {
		t.Errorf("B.Acquire after A released: %v, want admitted", err)
	}
}

func TestRedisConcurrentAcquireAcrossInstances(t *testing.T) {
	a, b := twoInstances(t, redistest.Start(t), coord.RedisOptions{})
	checkConcurrentAcquire(t, []coord.Store{a, b}, 7)
}

func TestRedisCloseReleasesEverything(t *testing.T) {
	a, b := twoInstances(t, redistest.Start(t), coord.RedisOptions{})
	const subject = "pg-main/alice@example.com"
	if _, errs := acquireN(t, a, subject, 0, 3); len(errs) > 0 {
		t.Fatalf("Acquire: %v", errs)
	}
	if err := a.RegisterCancel(t.Context(), "cafebabe00000001"); err != nil {
		t.Fatalf("RegisterCancel: %v", err)
	}
	if err := a.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wantCount(t, b, subject, 0)
	if routed, err := b.RouteCancel(t.Context(), "cafebabe00000001", "n1"); routed || err != nil {
		t.Errorf("RouteCancel to a closed instance = %t, %v; want false, nil", routed, err)
	}
}

func TestRedisCrashedInstanceStopsCounting(t *testing.T) {
	const ttl = 300 * time.Millisecond
	a, b := twoInstances(t, redistest.Start(t), coord.RedisOptions{LeaseTTL: ttl})
	const subject, max = "pg-main/alice@example.com", 2
	if _, errs := acquireN(t, a, subject, max, max); len(errs) > 0 {
		t.Fatalf("A.Acquire: %v", errs)
	}
	if _, err := b.Acquire(t.Context(), subject, max); !errors.Is(err, coord.ErrLimit) {
		t.Fatalf("B.Acquire while A holds %d: %v, want ErrLimit", max, err)
	}
	a.Crash()
	testkit.WaitFor(t, 10*time.Second, "admitted after A crashed", func() bool {
		_, err := b.Acquire(t.Context(), subject, max)
		return err == nil
	})
}

func TestRedisHeartbeatKeepsLeases(t *testing.T) {
	const ttl = 300 * time.Millisecond
	srv := redistest.Start(t)
	a := newRedis(t, srv.Addr(), coord.RedisOptions{LeaseTTL: ttl})
	const subject = "pg-main/alice@example.com"
	if _, err := a.Acquire(t.Context(), subject, 1); err != nil {
		t.Fatalf("Acquire: %v", err)
	}
	time.Sleep(5 * ttl) // many heartbeats; without them the lease would expire
	wantCount(t, a, subject, 1)
}

func TestRedisOutageFailsClosed(t *testing.T) {
	srv := redistest.Start(t)
	a := newRedis(t, srv.Addr(), coord.RedisOptions{LeaseTTL: time.Second, DialTimeout: 200 * time.Millisecond})
	const subject, max = "pg-main/alice@example.com", 2
	releases, errs := acquireN(t, a, subject, max, 2)
	if len(errs) > 0 {
		t.Fatalf("Acquire: %v", errs)
	}

	srv.Stop(t)
	if _, err := a.Acquire(t.Context(), subject, max); !errors.Is(err, coord.ErrUnavailable) {
		t.Errorf("Acquire with Redis down: %v, want ErrUnavailable", err)
	}
	if _, err := a.Count(t.Context(), subject); !errors.Is(err, coord.ErrUnavailable) {
		t.Errorf("Count with Redis down: %v, want ErrUnavailable", err)
	}
	if _, err := a.RouteCancel(t.Context(), "cafebabe00000001", "n1"); !errors.Is(err, coord.ErrUnavailable) {
		t.Errorf("RouteCancel with Redis down: %v, want ErrUnavailable", err)
	}
	releases[0]() // must return (bounded) although Redis is down

	srv.Restart(t) // empty: the heartbeat must re-create the live lease only
	var got int
	testkit.WaitFor(t, 15*time.Second, "live lease re-created", func() bool {
		n, err := a.Count(t.Context(), subject)
		got = n
		return err == nil && n > 0
	})
	if got != 1 {
		t.Fatalf("after restart Count = %d, want 1 (the lease released during the outage must stay gone)", got)
	}
	if _, err := a.Acquire(t.Context(), subject, max); err != nil {
		t.Errorf("Acquire after Redis came back: %v", err)
	}
	if _, err := a.Acquire(t.Context(), subject, max); !errors.Is(err, coord.ErrLimit) {
		t.Errorf("Acquire past max after Redis came back: %v, want ErrLimit", err)
	}
}

func TestNewRedisUnreachable(t *testing.T) {
	srv := redistest.Start(t)
	srv.Stop(t)
	_, err := coord.NewRedis(t.Context(), coord.RedisOptions{Addr: srv.Addr(), DialTimeout: 200 * time.Millisecond})
	if !errors.Is(err, coord.ErrUnavailable) {
		t.Errorf("NewRedis with no server: %v, want ErrUnavailable", err)
	}
}

func TestNewRedisOptionErrors(t *testing.T) {
	tests := []struct {
		name string
		opts coord.RedisOptions
		want string
	}{
		{"no address", coord.RedisOptions{}, "address is empty"},
		{"negative TTL", coord.RedisOptions{Addr: "127.0.0.1:1", LeaseTTL: -time.Second}, "lease TTL"},
		{"tiny TTL", coord.RedisOptions{Addr: "127.0.0.1:1", LeaseTTL: time.Millisecond}, "lease TTL"},
		{"negative dial timeout", coord.RedisOptions{Addr: "127.0.0.1:1", DialTimeout: -1}, "dial timeout"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := coord.NewRedis(t.Context(), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("NewRedis: got error %v, want one containing %q", err, tt.want)
			}
			if errors.Is(err, coord.ErrUnavailable) {
				t.Errorf("NewRedis: invalid options reported as ErrUnavailable: %v", err)
			}
		})
	}
}

func TestRedisKeys(t *testing.T) {
	srv := redistest.Start(t)
	a := newRedis(t, srv.Addr(), coord.RedisOptions{KeyPrefix: "wp-a:"})
	b := newRedis(t, srv.Addr(), coord.RedisOptions{KeyPrefix: "wp-b:"})
	const subject = "pg-main/alice@example.com"
	if _, err := a.Acquire(t.Context(), subject, 1); err != nil {
		t.Fatalf("A.Acquire: %v", err)
	}
	if err := a.RegisterCancel(t.Context(), "cafebabe00000001"); err != nil {
		t.Fatalf("RegisterCancel: %v", err)
	}
	t.Run("prefixes isolate", func(t *testing.T) {
		if _, err := b.Acquire(t.Context(), subject, 1); err != nil {
			t.Errorf("Acquire under another prefix: %v, want admitted", err)
		}
	})
	t.Run("no raw names", func(t *testing.T) {
		raw := redis.NewClient(&redis.Options{Addr: srv.Addr()})
		defer raw.Close()
		keys, err := raw.Keys(t.Context(), "*").Result()
		if err != nil {
			t.Fatalf("KEYS: %v", err)
		}
		if len(keys) == 0 {
			t.Fatal("KEYS returned nothing")
		}
		for _, k := range keys {
			if !strings.HasPrefix(k, "wp-a:") && !strings.HasPrefix(k, "wp-b:") {
				t.Errorf("key %q has neither prefix", k)
			}
			if strings.Contains(k, "alice") || strings.Contains(k, "cafebabe") {
				t.Errorf("key %q reveals a subject or cancel key", k)
			}
		}
	})
}
