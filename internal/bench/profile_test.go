package bench

import (
	"context"
	"os"
	"strings"
	"testing"
)

// TestProfilerPhase: a phase writes a CPU profile and both allocation
// snapshots, and pprof can read each view of them.
func TestProfilerPhase(t *testing.T) {
	p := &Profiler{Dir: t.TempDir()}
	ph, err := p.Start("unit")
	if err != nil {
		t.Fatal(err)
	}
	var sink [][]byte
	for i := range 2000 {
		sink = append(sink, make([]byte, 1024+i))
	}
	_ = sink
	if err := ph.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	cpu, base, allocs := p.Paths("unit")
	for _, path := range []string{cpu, base, allocs} {
		st, err := os.Stat(path)
		if err != nil || st.Size() == 0 {
			t.Errorf("profile %s: got %v (size %d), want a non-empty file", path, err, sizeOf(st))
		}
	}
	if testing.Short() {
		return
	}
	for _, v := range []TopView{TopViews(5, "unit")[0], TopViews(5, "unit")[2]} { // the others filter on labels and packages this test lacks
		out, err := p.Top(context.Background(), "unit", v)
		if err != nil {
			t.Errorf("%s: %v\n%s", v.Title, err, out)
			continue
		}
		if !strings.Contains(out, "flat") {
			t.Errorf("%s: got %q, want a pprof -top table", v.Title, out)
		}
	}
}

// TestProfilerSecondCPUProfile: a phase started while another CPU profile
// runs still records allocations and says why it has no CPU profile.
func TestProfilerSecondCPUProfile(t *testing.T) {
	p := &Profiler{Dir: t.TempDir()}
	outer, err := p.Start("outer")
	if err != nil {
		t.Fatal(err)
	}
	defer outer.Stop()
	inner, err := p.Start("inner")
	if err != nil {
		t.Fatal(err)
	}
	if err := inner.Stop(); err == nil || !strings.Contains(err.Error(), "CPU profile of inner") {
		t.Errorf("inner Stop: got %v, want the CPU profile error", err)
	}
	_, _, allocs := p.Paths("inner")
	if _, err := os.Stat(allocs); err != nil {
		t.Errorf("inner allocation profile: %v", err)
	}
}

func sizeOf(st os.FileInfo) int64 {
	if st == nil {
		return 0
	}
	return st.Size()
}
