package provision

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"testing"
	"time"

	"github.com/waypoint-proxy/waypoint/internal/authz"
	"github.com/waypoint-proxy/waypoint/internal/pgtest"
)

// BenchmarkSCRAMVerifier measures the Go side of a password rotation at the
// default iteration count and at PostgreSQL's 4096 (see
// DefaultSCRAMIterations).
func BenchmarkSCRAMVerifier(b *testing.B) {
	for _, iter := range []int{DefaultSCRAMIterations, 4096} {
		b.Run(fmt.Sprintf("iter=%d", iter), func(b *testing.B) {
			for b.Loop() {
				if _, err := scramVerifier("0123456789abcdef0123456789abcdef0123456789a", iter); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// countingDial counts the writes on every connection it dials: a write is
// one flush of the client, so writes per Ensure approximate round trips.
type countingDial struct{ writes atomic.Int64 }

func (d *countingDial) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
	if err != nil {
		return nil, err
	}
	return &countingConn{Conn: c, n: &d.writes}, nil
}

type countingConn struct {
	net.Conn
	n *atomic.Int64
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.n.Add(1)
	return c.Conn.Write(p)
}

// BenchmarkEnsure_Warm measures Ensure+Release for a role that exists and
// is already correct (the common case: a user reconnecting). It reports
// client writes per operation (messages to the backend; the warm path sends
// two of them in parallel, plus the unlock) and the time callers wait for
// Ensure alone.
func BenchmarkEnsure_Warm(b *testing.B) {
	c := pgtest.Shared(b, pgtest.Options{})
	c.CreateAppDatabase(b, "benchdb")
	d := &countingDial{}
	p := newTestProvisioner(b, c, Options{DialFunc: d.dial})
	pr := peer("bench@example.com", "laptop", "b1")
	eff := effective("benchdb", authz.Readwrite, "public", "app")
	ensure(b, p, pr, eff).Release() // create role, groups, pools
	ctx := context.Background()
	d.writes.Store(0)
	var leaseWait time.Duration
	b.ResetTimer()
	for b.Loop() {
		began := time.Now()
		l, err := p.Ensure(ctx, pr, eff)
		if err != nil {
			b.Fatal(err)
		}
		leaseWait += time.Since(began)
		l.Release()
	}
	b.ReportMetric(float64(d.writes.Load())/float64(b.N), "roundtrips/op")
	// The caller waits only for Ensure; Release unlocks in the background
	// (the next iteration's lock waits for that server-side).
	b.ReportMetric(float64(leaseWait.Microseconds())/float64(b.N), "ensure-µs/op")
	if s := p.Stats(); s.Warm == 0 {
		b.Errorf("no Ensure took the warm path: %+v", s)
	}
}

// BenchmarkEnsure_Cold measures Ensure+Release for a new identity each time
// (role created; groups already exist after the first).
func BenchmarkEnsure_Cold(b *testing.B) {
	c := pgtest.Shared(b, pgtest.Options{})
	c.CreateAppDatabase(b, "benchdb")
	p := newTestProvisioner(b, c, Options{Prefix: "wpb_"})
	eff := effective("benchdb", authz.Readwrite, "public", "app")
	ctx := context.Background()
	i := 0
	for b.Loop() {
		i++
		l, err := p.Ensure(ctx, peer(fmt.Sprintf("cold%d@example.com", i), "laptop", fmt.Sprint(i)), eff)
		if err != nil {
			b.Fatal(err)
		}
		l.Release()
	}
}
