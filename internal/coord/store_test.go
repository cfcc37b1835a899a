package coord_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/coord"
	"github.com/waypoint-proxy/waypoint/internal/coord/redistest"
)

// stores lists the Store implementations every contract test runs against.
// Each factory returns a fresh, empty store closed when the test ends.
var stores = []struct {
	name string
	new  func(t *testing.T) coord.Store
}{
	{"memory", func(t *testing.T) coord.Store {
		m := coord.NewMemory()
		t.Cleanup(func() { m.Close() })
		return m
	}},
	{"redis", func(t *testing.T) coord.Store {
		// The contract tests check atomicity, with up to 200 operations
		// queued on the client's pool at once; a generous budget keeps a
		// loaded machine (the race detector, other packages' tests) from
		// turning queueing into "shared state unavailable". Tests of the
		// timeouts themselves set short ones.
		return newRedis(t, redistest.Start(t).Addr(), coord.RedisOptions{DialTimeout: 5 * time.Second})
	}},
}

// newRedis returns a store on addr, closed when the test ends. Zero fields
// of opts get test defaults: DialTimeout 500ms.
func newRedis(t *testing.T, addr string, opts coord.RedisOptions) *coord.Redis {
	t.Helper()
	opts.Addr = addr
	if opts.DialTimeout == 0 {
		opts.DialTimeout = 500 * time.Millisecond
	}
	r, err := coord.NewRedis(t.Context(), opts)
	if err != nil {
		t.Fatalf("NewRedis: %v", err)
	}
	t.Cleanup(func() {
		if err := r.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return r
}

// acquireN calls Acquire n times and returns the release funcs of the
// admitted ones and the errors of the refused ones.
func acquireN(t *testing.T, s coord.Store, subject string, max, n int) (releases []func(), errs []error) {
	t.Helper()
	for range n {
		rel, err := s.Acquire(t.Context(), subject, max)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		releases = append(releases, rel)
	}
	return releases, errs
}

// wantCount fails the test unless subject holds want connections in s.
func wantCount(t *testing.T, s coord.Store, subject string, want int) {
	t.Helper()
	got, err := s.Count(t.Context(), subject)
	if err != nil {
		t.Fatalf("Count(%q): %v", subject, err)
	}
	if got != want {
		t.Fatalf("Count(%q) = %d, want %d", subject, got, want)
	}
}

func TestStoreLimits(t *testing.T) {
	tests := []struct {
		max, attempts, wantAdmitted int
	}{
		{max: 1, attempts: 3, wantAdmitted: 1},
		{max: 2, attempts: 5, wantAdmitted: 2},
		{max: 3, attempts: 3, wantAdmitted: 3},
		{max: 0, attempts: 25, wantAdmitted: 25},  // unlimited, still counted
		{max: -1, attempts: 25, wantAdmitted: 25}, // negative is unlimited too
	}
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.new(t)
			for _, tt := range tests {
				t.Run(fmt.Sprintf("max=%d", tt.max), func(t *testing.T) {
					subject := fmt.Sprintf("pg-main/user%d@example.com", tt.max)
					releases, errs := acquireN(t, s, subject, tt.max, tt.attempts)
					if len(releases) != tt.wantAdmitted {
						t.Errorf("admitted %d of %d, want %d (errors: %v)", len(releases), tt.attempts, tt.wantAdmitted, errs)
					}
					for _, err := range errs {
						if !errors.Is(err, coord.ErrLimit) {
							t.Errorf("refusal %v does not wrap ErrLimit", err)
						}
					}
					wantCount(t, s, subject, tt.wantAdmitted)
					for _, rel := range releases {
						rel()
					}
					wantCount(t, s, subject, 0)
				})
			}
		})
	}
}

func TestStoreReleaseIdempotent(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.new(t)
			const subject = "pg-main/alice@example.com"
			releases, errs := acquireN(t, s, subject, 2, 2)
			if len(errs) > 0 {
				t.Fatalf("Acquire: %v", errs)
			}
			releases[0]()
			releases[0]()
			releases[0]()
			wantCount(t, s, subject, 1)
			// The slot freed once is usable once.
			if _, errs := acquireN(t, s, subject, 2, 2); len(errs) != 1 {
				t.Errorf("after one release: got %d refusals of 2 attempts, want 1", len(errs))
			}
		})
	}
}

func TestStoreSubjectsIndependent(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.new(t)
			subjects := []string{"pg-main/alice@example.com", "pg-other/alice@example.com", "pg-main/bob@example.com", "", "pg-main/ünïcode\x00\n*?[]"}
			for _, subj := range subjects {
				if _, errs := acquireN(t, s, subj, 1, 2); len(errs) != 1 {
					t.Errorf("subject %q: got %d refusals of 2 attempts at max=1, want 1", subj, len(errs))
				}
			}
			for _, subj := range subjects {
				wantCount(t, s, subj, 1)
			}
		})
	}
}

func TestStoreConcurrentAcquire(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			checkConcurrentAcquire(t, []coord.Store{st.new(t)}, 10)
		})
	}
}

// checkConcurrentAcquire races 200 Acquires of one subject, limited to max,
// over stores: exactly max must be admitted, every store (the first and the
// last checked) must count them, and releasing them all must leave none.
func checkConcurrentAcquire(t *testing.T, stores []coord.Store, max int) {
	t.Helper()
	const subject, workers = "pg-main/alice@example.com", 200
	admitted, releases := concurrentAcquire(t, stores, subject, max, workers)
	if admitted != max {
		t.Errorf("admitted %d of %d concurrent attempts on %d store(s), want %d", admitted, workers, len(stores), max)
	}
	wantCount(t, stores[0], subject, max)
	for _, rel := range releases {
		rel()
	}
	wantCount(t, stores[len(stores)-1], subject, 0)
}

// concurrentAcquire runs workers concurrent Acquires spread over stores and
// returns how many were admitted, with their release funcs. Any error other
// than ErrLimit fails the test.
func concurrentAcquire(t *testing.T, stores []coord.Store, subject string, max, workers int) (int, []func()) {
	t.Helper()
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		releases []func()
		admitted atomic.Int64
	)
	start := make(chan struct{})
	for i := range workers {
		wg.Go(func() {
			<-start
			rel, err := stores[i%len(stores)].Acquire(context.Background(), subject, max)
			if err != nil {
				if !errors.Is(err, coord.ErrLimit) {
					t.Errorf("Acquire: %v, want nil or ErrLimit", err)
				}
				return
			}
			admitted.Add(1)
			mu.Lock()
			releases = append(releases, rel)
			mu.Unlock()
		})
	}
	close(start)
	wg.Wait()
	return int(admitted.Load()), releases
}

func TestStoreClose(t *testing.T) {
	for _, st := range stores {
		t.Run(st.name, func(t *testing.T) {
			s := st.new(t)
			rel, err := s.Acquire(t.Context(), "pg-main/alice@example.com", 1)
			if err != nil {
				t.Fatalf("Acquire: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if err := s.Close(); err != nil {
				t.Errorf("second Close: %v, want nil", err)
			}
			rel() // after Close: does nothing, must not panic or block
			if _, err := s.Acquire(t.Context(), "pg-main/alice@example.com", 1); !errors.Is(err, coord.ErrUnavailable) {
				t.Errorf("Acquire after Close: %v, want ErrUnavailable", err)
			}
			if err := s.RegisterCancel(t.Context(), "k"); !errors.Is(err, coord.ErrUnavailable) {
				t.Errorf("RegisterCancel after Close: %v, want ErrUnavailable", err)
			}
		})
	}
}
