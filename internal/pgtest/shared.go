package pgtest

import (
	"errors"
	"fmt"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// registry holds the Shared clusters of this test binary.
var registry struct {
	mu       sync.Mutex
	main     bool // Main is running the tests
	clusters map[string]*sharedCluster
}

// sharedCluster is one Shared cluster, started at most once.
type sharedCluster struct {
	once sync.Once
	c    *Cluster
	err  error
}

// Shared returns the cluster shared by every test in this binary that
// passes equivalent opts (same resolved major version, auth, statement
// logging and settings), starting it on first use. Tests running in
// parallel wait for one start. It is stopped when the binary's tests end,
// which requires TestMain to call Main. Tests must not Stop or Restart it,
// and should not leave state (roles, databases) that other tests trip over.
func Shared(tb testing.TB, opts Options) *Cluster {
	tb.Helper()
	opts, err := opts.normalize()
	if err != nil {
		tb.Fatal(err)
	}
	in, err := findInstallation(opts.Version)
	if err != nil {
		skipOrFatal(tb, err)
	}
	opts.Version = in.Major
	sc, err := lookupShared(sharedKey(opts))
	if err != nil {
		tb.Fatal(err)
	}
	sc.once.Do(func() {
		began := time.Now()
		if sc.c, sc.err = start(opts); sc.err == nil {
			sc.c.shared = true
			tb.Logf("pgtest: shared PostgreSQL %d at %s started in %.2fs", sc.c.Version, sc.c.Addr(), time.Since(began).Seconds())
		}
	})
	if sc.err != nil {
		skipOrFatal(tb, sc.err)
	}
	return sc.c
}

// lookupShared returns the registry entry for key, creating it.
func lookupShared(key string) (*sharedCluster, error) {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	if !registry.main {
		return nil, fmt.Errorf("pgtest: Shared needs TestMain to call pgtest.Main: func TestMain(m *testing.M) { pgtest.Main(m) }")
	}
	return entry(&registry.clusters, key), nil
}

// sharedKey identifies normalised opts with a resolved Version.
func sharedKey(opts Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, "v=%d auth=%s log=%t", opts.Version, opts.Auth, opts.LogStatements)
	for _, name := range slices.Sorted(maps.Keys(opts.Settings)) {
		fmt.Fprintf(&b, " %s=%q", name, opts.Settings[name])
	}
	return b.String()
}

// Main is for TestMain: it runs the tests, stops and removes the Shared
// clusters, and exits with the tests' status (failing if a cluster could
// not be stopped). Under Main, clusters start from a per-binary copy of an
// initdb'd template, which Main also removes.
func Main(m *testing.M) {
	registry.mu.Lock()
	registry.main = true
	registry.mu.Unlock()
	code := m.Run()
	if err := errors.Join(stopShared(), removeTemplates()); err != nil {
		fmt.Fprintln(os.Stderr, err)
		if code == 0 {
			code = 1
		}
	}
	os.Exit(code)
}

// stopShared destroys every Shared cluster.
func stopShared() error {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	var errs []string
	for key, sc := range registry.clusters {
		if sc.c != nil {
			if err := sc.c.destroy(); err != nil {
				errs = append(errs, err.Error())
			}
		}
		delete(registry.clusters, key)
	}
	if len(errs) > 0 {
		return fmt.Errorf("pgtest: stopping shared clusters: %s", strings.Join(errs, "; "))
	}
	return nil
}

// requiredInCI are the major versions EachVersion insists on under CI=true.
var requiredInCI = []int{15, 18}

// EachVersion runs fn in a subtest "pg<N>" for every installed major
// version N (see Versions), each with a Shared cluster of opts (whose
// Version is ignored). Subtests run one after another; fn may call
// t.Parallel. Under CI=true, versions 15 and 18 must both be installed.
func EachVersion(t *testing.T, opts Options, fn func(t *testing.T, c *Cluster)) {
	t.Helper()
	versions := Versions()
	if inCI() {
		for _, v := range requiredInCI {
			if !slices.Contains(versions, v) {
				t.Fatalf("pgtest: PostgreSQL %d is required under CI=true but not installed (found %v); %s", v, versions, installHint)
			}
		}
	}
	if len(versions) == 0 {
		skipOrFatal(t, &missingError{what: "PostgreSQL (any version)"})
	}
	for _, v := range versions {
		t.Run(fmt.Sprintf("pg%d", v), func(t *testing.T) {
			o := opts
			o.Version = v
			fn(t, Shared(t, o))
		})
	}
}

// entry returns (*m)[k], first making the map and a zero V there if
// missing. The caller holds the lock that guards *m.
func entry[K comparable, V any](m *map[K]*V, k K) *V {
	if *m == nil {
		*m = map[K]*V{}
	}
	v := (*m)[k]
	if v == nil {
		v = new(V)
		(*m)[k] = v
	}
	return v
}
