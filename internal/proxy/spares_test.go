package proxy

import (
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/pgwire"
)

// countingConn is a net.Conn that counts Close calls.
type countingConn struct {
	net.Conn
	closed *atomic.Int64
}

func (c countingConn) Close() error {
	c.closed.Add(1)
	return c.Conn.Close()
}

// TestSparePool_BoundUnderStorm: 100 identities open spares at once against
// a pool bounded at 32; the pool never holds more than 32, every spare it
// evicts is closed, and what it holds plus what it closed is everything
// opened. Runs without PostgreSQL (the backends are pipes).
func TestSparePool_BoundUnderStorm(t *testing.T) {
	const identities, max = 100, 32
	p := newSparePool(Spares{PerRole: 1, Max: max, IdleTimeout: time.Minute})
	var closed, opened atomic.Int64
	var peak atomic.Int64
	var wg sync.WaitGroup
	for i := range identities {
		wg.Add(1)
		go func() {
			defer wg.Done()
			key := fmt.Sprintf("identity-%03d", i)
			if !p.reserve(key) {
				t.Errorf("%s: first reservation refused", key)
				return
			}
			if p.reserve(key) {
				t.Errorf("%s: a second reservation while one is being opened (PerRole 1)", key)
			}
			a, b := net.Pipe()
			defer b.Close()
			opened.Add(1)
			p.put(&spare{key: key, role: key, up: &pgwire.Upstream{Conn: countingConn{a, &closed}}})
			idle, _, _ := p.stats()
			for cur := peak.Load(); int64(idle) > cur && !peak.CompareAndSwap(cur, int64(idle)); cur = peak.Load() {
			}
		}()
	}
	wg.Wait()
	idle, _, _ := p.stats()
	if peak.Load() > max || idle > max {
		t.Errorf("idle spares: peak %d, now %d; want at most %d", peak.Load(), idle, max)
	}
	if opened.Load() != identities {
		t.Errorf("spares opened: got %d, want one per identity (%d)", opened.Load(), identities)
	}
	if got := int64(idle) + closed.Load(); got != opened.Load() {
		t.Errorf("held %d + closed %d = %d, want every opened spare (%d)", idle, closed.Load(), got, opened.Load())
	}
	p.flush(true)
	if closed.Load() != opened.Load() {
		t.Errorf("after flush: closed %d of %d", closed.Load(), opened.Load())
	}
}
