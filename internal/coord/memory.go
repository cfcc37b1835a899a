package coord

import (
	"context"
	"fmt"
	"sync"
)

// Memory is a Store for a single Waypoint instance: it counts connections in
// memory and never routes cancels (every session is local). The zero value is
// not usable; call NewMemory. It is safe for concurrent use.
type Memory struct {
	mu     sync.Mutex
	counts map[string]int // subject → connections held; no zero entries
	closed bool
}

var _ Store = (*Memory)(nil)

// NewMemory returns an empty in-memory store.
func NewMemory() *Memory {
	return &Memory{counts: map[string]int{}}
}

// Acquire implements Store. It never returns ErrUnavailable unless the store
// is closed, and ignores ctx (it does not block).
func (m *Memory) Acquire(_ context.Context, subject string, max int) (func(), error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, errClosed
	}
	held := m.counts[subject]
	if max > 0 && held >= max {
		return nil, fmt.Errorf("coord: %d of %d connections held: %w", held, max, ErrLimit)
	}
	m.counts[subject] = held + 1
	var once sync.Once
	return func() { once.Do(func() { m.release(subject) }) }, nil
}

// release gives back one of subject's connections.
func (m *Memory) release(subject string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	if m.counts[subject] <= 1 {
		delete(m.counts, subject)
		return
	}
	m.counts[subject]--
}

// Count implements Store.
func (m *Memory) Count(_ context.Context, subject string) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.counts[subject], nil
}

// RegisterCancel implements Store. A single instance owns every key, so
// there is nothing to record; it fails only once the store is closed.
func (m *Memory) RegisterCancel(context.Context, string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return errClosed
	}
	return nil
}

// UnregisterCancel implements Store; it does nothing.
func (m *Memory) UnregisterCancel(string) {}

// RouteCancel implements Store: there is no other instance, so it always
// returns false, nil.
func (m *Memory) RouteCancel(context.Context, string, string) (bool, error) { return false, nil }

// OnCancel implements Store; fn is never called.
func (m *Memory) OnCancel(func(key, nodeID string)) {}

// Close implements Store: it forgets every count.
func (m *Memory) Close() error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	clear(m.counts)
	return nil
}
