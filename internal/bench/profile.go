package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"time"
)

// Profiler writes a CPU profile and an allocation profile per benchmark
// phase into Dir:
//
//	bench-<phase>.cpu.prof          CPU samples while the phase ran
//	bench-<phase>.allocs-base.prof  allocations up to the phase's start
//	bench-<phase>.allocs.prof       allocations up to its end
//
// The allocation pair is read with pprof's -diff_base to see what the phase
// allocated. Phases must not overlap (the runtime has one CPU profiler). A
// Profiler is not safe for concurrent use.
type Profiler struct {
	Dir string
}

// Phase is a running profiled phase; call Stop once.
type Phase struct {
	p       *Profiler
	name    string
	cpuFile *os.File // nil when CPU profiling was unavailable
	cpuErr  error
}

// Paths returns the files of phase name.
func (p *Profiler) Paths(name string) (cpu, allocsBase, allocs string) {
	base := filepath.Join(p.Dir, "bench-"+name)
	return base + ".cpu.prof", base + ".allocs-base.prof", base + ".allocs.prof"
}

// Start begins phase name: it snapshots the allocation profile and starts
// the CPU profiler. If CPU profiling is already running (go test
// -cpuprofile), the phase records allocations only and Stop reports why.
func (p *Profiler) Start(name string) (*Phase, error) {
	cpu, base, _ := p.Paths(name)
	if err := writeProfile("allocs", base); err != nil {
		return nil, err
	}
	ph := &Phase{p: p, name: name}
	f, err := os.Create(cpu)
	if err != nil {
		return nil, fmt.Errorf("bench: create CPU profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		os.Remove(cpu)
		ph.cpuErr = fmt.Errorf("bench: CPU profile of %s: %w", name, err)
		return ph, nil
	}
	ph.cpuFile = f
	return ph, nil
}

// Stop ends the phase and writes its final allocation profile. The error
// also reports a CPU profile that could not be taken.
func (ph *Phase) Stop() error {
	var errs []error
	if ph.cpuFile != nil {
		pprof.StopCPUProfile()
		if err := ph.cpuFile.Close(); err != nil {
			errs = append(errs, fmt.Errorf("bench: write CPU profile: %w", err))
		}
	}
	_, _, allocs := ph.p.Paths(ph.name)
	if err := writeProfile("allocs", allocs); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(append(errs, ph.cpuErr)...)
}

// writeProfile writes the runtime profile named kind ("allocs", "heap") to
// path, after a fresh GC: both profiles only reflect the heap as of the last
// completed collection.
func writeProfile(kind, path string) error {
	runtime.GC()
	f, err := os.Create(path)
	if err != nil {
		return fmt.Errorf("bench: create %s profile: %w", kind, err)
	}
	if err := pprof.Lookup(kind).WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("bench: write %s profile: %w", kind, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("bench: write %s profile: %w", kind, err)
	}
	return nil
}

// HeapPath is the file WriteHeap writes for name.
func (p *Profiler) HeapPath(name string) string {
	return filepath.Join(p.Dir, "bench-"+name+".heap.prof")
}

// WriteHeap writes the live heap (after a GC) as bench-<name>.heap.prof.
func (p *Profiler) WriteHeap(name string) error {
	return writeProfile("heap", p.HeapPath(name))
}

// TopHeap runs `go tool pprof -top` on the heap profile name, showing live
// bytes under Waypoint's packages.
func (p *Profiler) TopHeap(ctx context.Context, name string, nodes int) (string, error) {
	return p.pprof(ctx, "-top", fmt.Sprintf("-nodecount=%d", nodes), "-sample_index=inuse_space", "-focus="+waypointFocus, p.HeapPath(name))
}

// waypointFocus is a pprof -focus regexp matching Waypoint's own packages.
const waypointFocus = `waypoint-proxy/waypoint/internal/(proxy|provision|pgwire|relay|tailnet)\.`

// TopView is one `go tool pprof -top` reading of a phase.
type TopView struct {
	Title string
	Args  []string // pprof arguments before the profile files
	Alloc bool     // read the allocation pair instead of the CPU profile
}

// TopViews are the readings printed for a phase: the whole process by
// flat cost; the goroutines of one side (the pprof label side=<side>:
// "waypoint" or "l4"), sorted by cumulative cost so the pipeline's stages
// show; and the phase's allocations in total and under Waypoint's packages.
func TopViews(nodes int, side string) []TopView {
	n := fmt.Sprintf("-nodecount=%d", nodes)
	return []TopView{
		{Title: "CPU, whole process (tailnet nodes of both ends, clients, Waypoint, L4 forwarder), by flat", Args: []string{"-top", n}},
		{Title: "CPU, goroutines labelled side=" + side + " only, by cumulative", Args: []string{"-top", "-cum", n, "-tagfocus=side=" + side}},
		{Title: "allocated bytes during the phase, whole process", Args: []string{"-top", n, "-sample_index=alloc_space"}, Alloc: true},
		{Title: "allocated bytes during the phase under Waypoint's packages", Args: []string{"-top", n, "-sample_index=alloc_space", "-focus=" + waypointFocus}, Alloc: true},
	}
}

// Top runs `go tool pprof` with v on phase name's profiles and returns its
// output. The go command is found on PATH or in GOROOT.
func (p *Profiler) Top(ctx context.Context, name string, v TopView) (string, error) {
	cpu, base, allocs := p.Paths(name)
	args := v.Args
	if v.Alloc {
		args = append(args, "-diff_base="+base, allocs)
	} else {
		args = append(args, cpu)
	}
	return p.pprof(ctx, args...)
}

// pprof runs `go tool pprof args...` and returns its output.
func (p *Profiler) pprof(ctx context.Context, args ...string) (string, error) {
	args = append([]string{"tool", "pprof"}, args...)
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, goCommand(), args...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return out.String(), fmt.Errorf("bench: go %v: %w", args, err)
	}
	return out.String(), nil
}

// goCommand returns the go tool to run pprof with.
func goCommand() string {
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	return filepath.Join(runtime.GOROOT(), "bin", "go")
}
