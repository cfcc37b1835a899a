package bench

import (
	"context"
	"flag"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/waypoint-proxy/waypoint/internal/tailnettest"
)

var (
	fullFlag       = flag.Bool("bench-full", false, "run the full benchmark report (also: WAYPOINT_BENCH=1); default is the smoke version")
	profileDirFlag = flag.String("bench-profile-dir", "", "directory for CPU and allocation profiles (default: a new temporary directory, kept in full mode)")
	onlyFlag       = flag.String("bench-only", "", "comma-separated phases to run (connect,psql,pgbench,copy,storm,memory); default all")
)

// allPhases are the report's phases, in the order they run.
// Memory runs first: closed connections leave tailnet state behind (TCP
// TIME_WAIT in the userspace network stacks) whose later release would
// blur the difference it measures.
var allPhases = []string{"memory", "connect", "psql", "pgbench", "copy", "storm"}

// selectedPhases returns the phases -bench-only selects (all by default).
func selectedPhases(t *testing.T) map[string]bool {
	sel := map[string]bool{}
	if *onlyFlag == "" {
		for _, p := range allPhases {
			sel[p] = true
		}
		return sel
	}
	for _, p := range strings.Split(*onlyFlag, ",") {
		p = strings.TrimSpace(p)
		if !slices.Contains(allPhases, p) {
			t.Fatalf("-bench-only: unknown phase %q (want some of %v)", p, allPhases)
		}
		sel[p] = true
	}
	return sel
}

// config sizes one run. smokeConfig and fullConfig are the two used.
type config struct {
	full bool

	seqWarm, seqCold   int // sequential pgx connects: warm/L4 each, cold identities
	psqlWarm, psqlCold int // the same with psql

	pgbenchScale    int
	pgbenchClients  int
	pgbenchThreads  int
	pgbenchDuration time.Duration
	pgbenchRounds   int // alternating baseline/Waypoint runs; the median of each counts

	copyBytes  int64
	copyRounds int

	stormIdentities, stormPerIdentity int // "200 from 20 identities"
	stormOne                          int // "50 from one identity"

	idleSessions int

	pprofTop bool // print go tool pprof -top of each profile
}

// smokeConfig proves in a few seconds that every phase still works; its
// figures mean nothing.
func smokeConfig() config {
	return config{
		seqWarm: 4, seqCold: 2, psqlWarm: 2, psqlCold: 1,
		pgbenchScale: 1, pgbenchClients: 8, pgbenchThreads: 2, pgbenchDuration: 2 * time.Second, pgbenchRounds: 1,
		copyBytes: 4 << 20, copyRounds: 1,
		stormIdentities: 2, stormPerIdentity: 3, stormOne: 4,
		idleSessions: 5,
	}
}

// fullConfig is what `make bench` runs.
func fullConfig() config {
	return config{
		full:    true,
		seqWarm: 200, seqCold: 30, psqlWarm: 40, psqlCold: 15,
		pgbenchScale: 1, pgbenchClients: 8, pgbenchThreads: 2, pgbenchDuration: 10 * time.Second, pgbenchRounds: 5,
		copyBytes: 300e6, copyRounds: 5,
		stormIdentities: 20, stormPerIdentity: 10, stormOne: 50,
		idleSessions: 200,
		pprofTop:     true,
	}
}

// check refuses sizes that would put more connections through one client
// node than maxConnsPerClient.
func (c config) check() error {
	for name, n := range map[string]int{
		"sequential warm":    c.seqWarm + 2,
		"psql warm":          c.psqlWarm + 2,
		"idle sessions":      c.idleSessions + 2,
		"one-identity storm": 3 * c.stormOne,
		"storm per identity": 3 * c.stormPerIdentity,
	} {
		if n > maxConnsPerClient {
			return fmt.Errorf("%s: %d connections through one client node, more than %d", name, n, maxConnsPerClient)
		}
	}
	return nil
}

// run is one benchmark run: the harness, its identities and the report
// being filled.
type run struct {
	t      *testing.T
	cfg    config
	h      *harness
	report *Report
	prof   *Profiler

	// seqWarmP50 and seqL4P50 are the sequential pgx p50s through Waypoint
	// (warm) and the baseline: the storms' references. Zero when the
	// connect phase did not run.
	seqWarmP50, seqL4P50 time.Duration
}

// TestReport builds the whole path and measures every figure of the report.
// Without -bench-full (or WAYPOINT_BENCH=1) it runs a tiny smoke version
// that only proves the harness works: it fails on broken connections, never
// on figures.
func TestReport(t *testing.T) {
	cfg := smokeConfig()
	if *fullFlag || os.Getenv("WAYPOINT_BENCH") == "1" {
		cfg = fullConfig()
	}
	if err := cfg.check(); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	b := &run{t: t, cfg: cfg, report: &Report{Title: "Waypoint benchmark: Waypoint vs plain L4 forwarder on the same in-process tailnet"}}
	b.prof = &Profiler{Dir: profileDir(t, cfg.full)}
	b.h = newHarness(t, cfg)
	t.Logf("harness up in %v", time.Since(began).Round(time.Millisecond))

	sel := selectedPhases(t)
	for _, p := range []struct {
		name string
		run  func()
	}{
		{"memory", b.memory}, {"connect", b.sequentialPgx}, {"psql", b.sequentialPsql},
		{"pgbench", b.pgbench}, {"copy", b.bulkCopy}, {"storm", b.storms},
	} {
		if sel[p.name] {
			p.run()
		}
	}
	b.environment(time.Since(began))
	b.output()
	b.profiles(sel)
}

// profileDir returns the directory profiles go to: the flag's, or a new
// temporary one (kept after a full run so the profiles can be read).
func profileDir(t *testing.T, full bool) string {
	if *profileDirFlag != "" {
		if err := os.MkdirAll(*profileDirFlag, 0o755); err != nil {
			t.Fatal(err)
		}
		abs, err := filepath.Abs(*profileDirFlag)
		if err != nil {
			t.Fatal(err)
		}
		return abs
	}
	if !full {
		return t.TempDir()
	}
	dir, err := os.MkdirTemp("", "waypoint-bench-")
	if err != nil {
		t.Fatal(err)
	}
	return dir
}

// sequentialPgx measures connect+SELECT 1+close with pgx, under the
// "connect" profile, and where Waypoint's part of the time goes.
func (b *run) sequentialPgx() {
	h := b.h
	pair := h.newPair()
	defer pair.retire()
	cold := h.identities("cold", b.cfg.seqCold)
	defer h.retire(cold)
	l4, l4def, warm, spare := h.baselineConfig(pair.l4), h.defaultCostConfig(pair.l4), h.waypointConfig(pair.wp), h.spareConfig(pair.wp)
	// One unmeasured round: the warm role exists, code paths are warm, the
	// first spare is open.
	for _, cfg := range []*pgx.ConnConfig{l4, l4def, warm, spare} {
		if _, err := connectOnce(cfg); err != nil {
			b.t.Fatalf("first connection: %v\nwaypoint log: %v", err, h.logs.Take())
		}
	}
	once := func(cfg *pgx.ConnConfig) measure { return func() (time.Duration, error) { return connectOnce(cfg) } }
	rec := h.stages
	coldM := make([]measure, len(cold))
	for i, c := range cold {
		coldM[i] = rec.tagged("cold", once(h.waypointConfig(c)))
	}
	phase := b.startPhase("connect")
	r := measureSequential(b.cfg.seqWarm, once(l4), once(l4def), rec.tagged("warm", once(warm)), h.spareOnce(spare), coldM)
	b.stopPhase(phase)
	b.reportSequential(secConnect, r)
	rec.report(b)
	b.seqWarmP50, b.seqL4P50 = r.warm.summary().P50, r.l4.summary().P50
}

// sequentialPsql measures psql -c 'select 1' through local forwarders.
func (b *run) sequentialPsql() {
	psql := lookTool("psql")
	if psql == "" {
		b.report.Note("psql not installed: psql figures skipped")
		return
	}
	h := b.h
	pair := h.newPair()
	defer pair.retire()
	l4Host, l4Port := h.forward(pair.l4, h.l4Addr)
	wpHost, wpPort := h.forward(pair.wp, h.wpAddr)
	once := func(p psqlTarget) measure {
		return func() (time.Duration, error) { return psqlOnce(psql, p.host, p.port, p.user, p.password) }
	}
	var cold []measure
	coldClients := h.identities("coldpsql", b.cfg.psqlCold)
	defer h.retire(coldClients)
	for _, c := range coldClients {
		host, port := h.forward(c, h.wpAddr)
		cold = append(cold, once(psqlTarget{host: host, port: port, user: "ignored"}))
	}
	l4 := psqlTarget{l4Host, l4Port, matchedUser, h.directPassword}
	l4def := psqlTarget{l4Host, l4Port, directUser, h.directPassword}
	warm := psqlTarget{wpHost, wpPort, "ignored", ""}
	for _, p := range []psqlTarget{l4, l4def, warm} {
		if _, err := once(p)(); err != nil {
			b.t.Fatalf("first psql run: %v", err)
		}
	}
	b.reportSequential(secPsql, measureSequential(b.cfg.psqlWarm, once(l4), once(l4def), once(warm), nil, cold))
}

// pgbench measures pgbench -S TPS through both, the Waypoint runs under
// the "relay" profile and the first baseline run under "relay-l4".
func (b *run) pgbench() {
	pgbench := lookTool("pgbench")
	if pgbench == "" {
		b.report.Note("pgbench not installed: pgbench figures skipped")
		return
	}
	h := b.h
	b.pgbenchInit(pgbench)
	pair := h.newPair()
	defer pair.retire()
	l4Host, l4Port := h.forward(pair.l4, h.l4Addr)
	wpHost, wpPort := h.forward(pair.wp, h.wpAddr)
	var l4TPS, wpTPS []float64
	for round := range b.cfg.pgbenchRounds {
		h.waitQuiet()
		ph := b.startPhaseIf(round == 0, "relay-l4")
		tps, err := b.pgbenchRun(pgbench, l4Host, l4Port, matchedUser, h.directPassword)
		b.stopPhase(ph)
		if err != nil {
			b.t.Errorf("pgbench through the baseline: %v", err)
			return
		}
		l4TPS = append(l4TPS, tps)
		h.waitQuiet()
		ph = b.startPhaseIf(round == 0, "relay")
		tps, err = b.pgbenchRun(pgbench, wpHost, wpPort, "ignored", "")
		b.stopPhase(ph)
		if err != nil {
			b.t.Errorf("pgbench through Waypoint: %v\nwaypoint log: %v\nheld role leases: %s", err, h.logs.Take(), h.heldLeases())
			return
		}
		wpTPS = append(wpTPS, tps)
	}
	ratio := Ratio(median(wpTPS), median(l4TPS))
	b.report.Add(secPgbench, Row{
		Name: fmt.Sprintf("%d clients, %d threads, %v, scale %d (median of %d alternating rounds; all rounds)", b.cfg.pgbenchClients,
			b.cfg.pgbenchThreads, b.cfg.pgbenchDuration, b.cfg.pgbenchScale, b.cfg.pgbenchRounds),
		Waypoint: fmt.Sprintf("%.0f tps %s", median(wpTPS), roundsString(wpTPS, "%.0f")),
		Baseline: fmt.Sprintf("%.0f tps %s", median(l4TPS), roundsString(l4TPS, "%.0f")),
		Ratio:    ratio, Value: ratio, Target: AtLeastRatio(0.97),
	})
}

// bulkCopy measures COPY out throughput on one open session through each.
func (b *run) bulkCopy() {
	h := b.h
	h.waitQuiet()
	pair := h.newPair()
	defer pair.retire()
	ctx := context.Background()
	var conns [2]*pgx.Conn
	for i, cfg := range []*pgx.ConnConfig{h.baselineConfig(pair.l4), h.waypointConfig(pair.wp)} {
		c, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			b.t.Errorf("copy: connect: %v", err)
			return
		}
		defer c.Close(ctx)
		conns[i] = c
	}
	var rates [2][]float64
	var got int64
	for range b.cfg.copyRounds {
		for i, c := range conns {
			n, rate, err := copyOut(c, b.cfg.copyBytes)
			if err != nil {
				b.t.Errorf("copy through %s: %v", []string{"the baseline", "Waypoint"}[i], err)
				return
			}
			rates[i] = append(rates[i], rate)
			got = n
		}
	}
	ratio := Ratio(median(rates[1]), median(rates[0]))
	b.report.Add(secCopy, Row{
		Name:     fmt.Sprintf("%.0f MB out (median of %d alternating rounds; all rounds)", float64(got)/1e6, b.cfg.copyRounds),
		Waypoint: fmt.Sprintf("%.1f MB/s %s", median(rates[1]), roundsString(rates[1], "%.1f")),
		Baseline: fmt.Sprintf("%.1f MB/s %s", median(rates[0]), roundsString(rates[0], "%.1f")),
		Ratio:    ratio, Value: ratio, Target: AtLeastRatio(0.95),
	})
}

// storms fires the two storms at fresh identities (roles created by the
// storm itself), again at the same identities (roles exist), and through the
// baseline.
func (b *run) storms() {
	h := b.h
	many := h.identities("storm", b.cfg.stormIdentities)
	one := h.identities("stormone", 1)
	for _, s := range []struct {
		name    string
		clients []*tailnettest.Client
		per     int
	}{
		{fmt.Sprintf("%d from %d identities", b.cfg.stormIdentities*b.cfg.stormPerIdentity, b.cfg.stormIdentities), many, b.cfg.stormPerIdentity},
		{fmt.Sprintf("%d from one identity", b.cfg.stormOne), one, b.cfg.stormOne},
	} {
		wpCfgs := stormConfigs(s.clients, s.per, h.waypointConfig)
		h.waitQuiet()
		cold := storm(wpCfgs)
		h.waitQuiet()
		warm := storm(wpCfgs)
		h.waitQuiet()
		l4 := storm(stormConfigs(s.clients, s.per, h.baselineConfig))
		b.reportStorm(s.name+", new roles", cold, l4)
		b.reportStorm(s.name+", roles exist", warm, l4)
	}
	h.retire(append(many, one...))
	if lines := h.logs.Take(); len(lines) > 0 {
		b.report.Note("Waypoint logged %d lines above INFO so far; first: %s", len(lines), lines[0])
	}
}

// memory measures the growth per idle session through each path: n
// sessions through the baseline, then n more through Waypoint while the
// first n stay open, so no connection closes between the readings.
func (b *run) memory() {
	h, n := b.h, b.cfg.idleSessions
	pair := h.newPair()
	defer pair.retire() // deferred first: runs after the sessions are closed
	h.waitQuiet()
	// One connection each first, so one-time state (the warm role, the
	// provisioner's pools, code paths) is not counted per session.
	for _, cfg := range []*pgx.ConnConfig{h.baselineConfig(pair.l4), h.waypointConfig(pair.wp)} {
		if _, err := connectOnce(cfg); err != nil {
			b.t.Fatalf("memory: first connection: %v", err)
		}
	}
	h.waitQuiet()
	l4Before := b.readMem()
	l4Conns, err := openIdle(h.baselineConfig(pair.l4), n)
	if err != nil {
		b.t.Errorf("open %d idle sessions through the baseline: %v", n, err)
		return
	}
	defer closeAll(l4Conns)
	l4After := b.readMem()
	wpBefore := l4After
	wpConns, err := openIdle(h.waypointConfig(pair.wp), n)
	if err != nil {
		b.t.Errorf("open %d idle sessions through Waypoint: %v\nwaypoint log: %v", n, err, h.logs.Take())
		return
	}
	defer closeAll(wpConns)
	wpAfter := b.readMem()
	if err := b.prof.WriteHeap("idle"); err != nil {
		b.t.Logf("heap profile: %v", err)
	}
	l4RSS, l4Go := PerSession(l4Before, l4After, n)
	wpRSS, wpGo := PerSession(wpBefore, wpAfter, n)
	target := Target{Bound: AtMost, Limit: 64 << 10, Label: "≤ 64 KiB"}
	for _, m := range []struct {
		name   string
		wp, l4 float64
	}{
		{"Go heap + stacks", wpGo, l4Go},
		{"RSS (VmRSS)", wpRSS, l4RSS},
	} {
		b.report.Add(secMemory, Row{
			Name:     fmt.Sprintf("%s per session, %d idle sessions", m.name, n),
			Waypoint: KiB(m.wp), Baseline: KiB(m.l4), Ratio: math.NaN(),
		})
		b.report.Add(secMemory, Row{
			Name:     fmt.Sprintf("  Waypoint's own: %s, waypoint − L4", m.name),
			Waypoint: KiB(m.wp - m.l4), Ratio: math.NaN(), Value: m.wp - m.l4, Target: target,
		})
	}
	for _, m := range []struct {
		name          string
		before, after Mem
	}{{"L4", l4Before, l4After}, {"Waypoint", wpBefore, wpAfter}} {
		b.report.Note("memory %s: %s → %s", m.name, memString(m.before), memString(m.after))
	}
	b.report.Add(secMemory, Row{
		Name:     "goroutines per idle session",
		Waypoint: fmt.Sprintf("%.2f", float64(wpAfter.Goroutines-wpBefore.Goroutines)/float64(n)),
		Baseline: fmt.Sprintf("%.2f", float64(l4After.Goroutines-l4Before.Goroutines)/float64(n)),
		Ratio:    math.NaN(),
	})
}

// environment notes what the figures were measured on.
func (b *run) environment(took time.Duration) {
	st := b.h.prov.Stats()
	b.report.Note("run: %s mode, %s, GOMAXPROCS=%d, NumCPU=%d, PostgreSQL %d on loopback, took %v",
		map[bool]string{true: "full", false: "smoke"}[b.cfg.full], runtime.Version(), runtime.GOMAXPROCS(0),
		runtime.NumCPU(), b.h.pg.Version, took.Round(time.Second))
	b.report.Note("provisioner: %d leases, %d roles created, %d rotations, %d coalesced, %d retries, %d errors",
		st.Provisioned, st.Created, st.Rotations, st.Coalesced, st.Retries, st.EnsureErrors)
	b.report.Note("profiles in %s", b.prof.Dir)
}

// output prints the table: to stdout in full mode, to the test log in smoke
// mode; in full mode it is also written to report.txt next to the profiles.
func (b *run) output() {
	var sb strings.Builder
	b.report.WriteTo(&sb)
	if !b.cfg.full {
		b.t.Log("\n" + sb.String())
		return
	}
	fmt.Fprintln(os.Stdout, "\n"+sb.String())
	path := filepath.Join(b.prof.Dir, "report.txt")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.t.Errorf("write report: %v", err)
	}
}

// phases are the profiled phases, in order.
var phases = []string{"connect", "relay", "relay-l4"}

// phaseSide is the pprof label value whose goroutines a phase's second
// CPU view shows.
var phaseSide = map[string]string{"connect": "waypoint", "relay": "waypoint", "relay-l4": "l4"}

// phaseOwner maps a profiled phase to the report phase that records it.
var phaseOwner = map[string]string{"connect": "connect", "relay": "pgbench", "relay-l4": "pgbench"}

// readMem reads the process's memory once the proxies' goroutines have
// settled into their idle reads.
func (b *run) readMem() Mem {
	time.Sleep(100 * time.Millisecond)
	m, err := ReadMem()
	if err != nil {
		b.t.Logf("memory: %v", err)
	}
	return m
}

// memString renders a memory reading for the notes.
func memString(m Mem) string {
	return fmt.Sprintf("RSS %.1f MiB, heap %.1f MiB, stacks %.1f MiB, %d goroutines",
		float64(m.RSS)/(1<<20), float64(m.Heap)/(1<<20), float64(m.Stacks)/(1<<20), m.Goroutines)
}

// profiles prints the top of every profile (full mode) or checks that they
// were written (smoke mode).
func (b *run) profiles(sel map[string]bool) {
	for _, name := range phases {
		if !sel[phaseOwner[name]] {
			continue
		}
		cpu, base, allocs := b.prof.Paths(name)
		for _, p := range []string{cpu, base, allocs} {
			if st, err := os.Stat(p); err != nil || st.Size() == 0 {
				if name != "connect" && lookTool("pgbench") == "" {
					continue
				}
				b.t.Errorf("profile %s missing or empty: %v", p, err)
			}
		}
		if !b.cfg.pprofTop {
			continue
		}
		for _, v := range TopViews(15, phaseSide[name]) {
			out, err := b.prof.Top(context.Background(), name, v)
			if err != nil {
				b.t.Logf("pprof %s: %v", name, err)
			}
			fmt.Fprintf(os.Stdout, "\n==== profile %s: %s\n%s", name, v.Title, out)
		}
	}
	if b.cfg.pprofTop && sel["memory"] {
		out, err := b.prof.TopHeap(context.Background(), "idle", 15)
		if err != nil {
			b.t.Logf("pprof idle heap: %v", err)
		}
		fmt.Fprintf(os.Stdout, "\n==== profile idle: live heap under Waypoint's packages with the idle sessions open\n%s", out)
	}
}

// startPhase starts a profiled phase; a failure is logged and the phase
// runs unprofiled.
func (b *run) startPhase(name string) *Phase {
	ph, err := b.prof.Start(name)
	if err != nil {
		b.t.Logf("profile %s: %v", name, err)
	}
	return ph
}

// startPhaseIf is startPhase when cond holds, else nil.
func (b *run) startPhaseIf(cond bool, name string) *Phase {
	if !cond {
		return nil
	}
	return b.startPhase(name)
}

// stopPhase stops ph; nil does nothing.
func (b *run) stopPhase(ph *Phase) {
	if ph == nil {
		return
	}
	if err := ph.Stop(); err != nil {
		b.t.Logf("profile: %v", err)
	}
}

// roundsString lists per-round figures as "(a, b)", or "" for one round.
func roundsString(vals []float64, format string) string {
	if len(vals) < 2 {
		return ""
	}
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = fmt.Sprintf(format, v)
	}
	return "(" + strings.Join(parts, ", ") + ")"
}
