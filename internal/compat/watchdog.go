package compat

import (
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"
)

// watchdog stops a test binary when a test has been running longer than
// limit, and remembers which top-level tests those were.
//
// What counts as running: a test or subtest from its "run" or "cont"
// event to its "pause" or end, but not while it has unfinished subtests —
// a parent whose parallel subtests wait for a free slot (-test.parallel)
// is waiting, not stuck, and a subtest that is stuck is caught itself.
type watchdog struct {
	limit time.Duration
	slow  map[string]time.Duration // limits of some top-level tests
	proc  *os.Process
	now   func() time.Time

	mu    sync.Mutex
	tests map[string]*runState // every unfinished test and subtest, by full name
	hung  []string
	fired bool
}

// runState is one unfinished test or subtest.
type runState struct {
	since    time.Time // when it last started, continued or lost its last child
	paused   bool
	children int // unfinished subtests
}

func newWatchdog(limit time.Duration, slow map[string]time.Duration, proc *os.Process) *watchdog {
	return &watchdog{limit: limit, slow: slow, proc: proc, now: time.Now, tests: map[string]*runState{}}
}

// observe tracks the test events of the binary.
func (w *watchdog) observe(ev event) {
	if ev.Test == "" {
		return
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	now := w.now()
	st := w.tests[ev.Test]
	switch ev.Action {
	case "run":
		if parent := w.parent(ev.Test); parent != nil {
			parent.children++
		}
		w.tests[ev.Test] = &runState{since: now}
	case "pause":
		if st != nil {
			st.paused = true
		}
	case "cont":
		if st != nil {
			st.paused, st.since = false, now
		}
	case "pass", "fail", "skip":
		delete(w.tests, ev.Test)
		if parent := w.parent(ev.Test); parent != nil {
			parent.children--
			if parent.children == 0 {
				parent.since = now // back to its own code
			}
		}
	}
}

// parent returns the unfinished test that test is a subtest of, or nil.
// A subtest's own name may contain "/" (t.Run("a/b", …) is reported as
// "TestX/a/b"), so the parent is the longest unfinished test whose name is
// a prefix up to a "/". w.mu must be held.
func (w *watchdog) parent(test string) *runState {
	for i := strings.LastIndexByte(test, '/'); i > 0; i = strings.LastIndexByte(test[:i], '/') {
		if st := w.tests[test[:i]]; st != nil {
			return st
		}
	}
	return nil
}

// start checks the running tests every second until the returned stop is
// called. It does nothing without a limit.
func (w *watchdog) start() (stop func()) {
	if w.limit <= 0 {
		return func() {}
	}
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		tick := time.NewTicker(time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				w.check()
			}
		}
	}()
	return func() { close(done); <-finished }
}

// check stops the binary (once) if a test has run past the limit. SIGQUIT
// makes a Go program print every goroutine's stack and exit, so the hung
// test's stack ends up in the output.
func (w *watchdog) check() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.fired {
		return
	}
	for _, name := range w.overdue() {
		top, _, _ := strings.Cut(name, "/")
		if !slices.Contains(w.hung, top) {
			w.hung = append(w.hung, top)
		}
	}
	if len(w.hung) > 0 {
		w.fired = true
		w.proc.Signal(syscall.SIGQUIT)
	}
}

// overdue returns the tests running (see watchdog) for longer than the
// limit. w.mu must be held.
func (w *watchdog) overdue() []string {
	now := w.now()
	var names []string
	for name, st := range w.tests {
		top, _, _ := strings.Cut(name, "/")
		limit, ok := w.slow[top]
		if !ok {
			limit = w.limit
		}
		if !st.paused && st.children == 0 && now.Sub(st.since) > limit {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// stopped returns the top-level tests the watchdog stopped the binary for.
func (w *watchdog) stopped() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.hung)
}
