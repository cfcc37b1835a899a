package bench

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"os/exec"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/waypoint-proxy/waypoint/internal/metrics"
	"github.com/waypoint-proxy/waypoint/internal/tailnettest"
)

// Section titles of the report.
const (
	secConnect = "connect + SELECT 1 + close, sequential (pgx through the tailnet dialer)"
	secPsql    = "psql -c 'select 1' (process start included) through a local forwarder"
	secPgbench = "steady state: pgbench -S (select-only)"
	secCopy    = "bulk transfer: COPY (SELECT …) TO STDOUT into io.Discard"
	secStorm   = "storms: simultaneous new connections (connect + SELECT 1 + close)"
	secMemory  = "memory per idle session (after GC; Waypoint minus L4 baseline = Waypoint's own)"
	secStages  = "where the time goes: each setup stage of the sequential pgx connections above, p50/p90/p99"
)

// connectOnce opens a session with cfg, runs SELECT 1 and closes it, and
// returns how long all of it took.
func connectOnce(cfg *pgx.ConnConfig) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	start := time.Now()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return 0, fmt.Errorf("connect: %w", err)
	}
	var one int
	qerr := conn.QueryRow(ctx, "SELECT 1").Scan(&one)
	cerr := conn.Close(ctx)
	d := time.Since(start)
	if err := errors.Join(qerr, cerr); err != nil {
		return 0, fmt.Errorf("select 1: %w", err)
	}
	return d, nil
}

// series collects the latencies of one kind of measurement.
type series struct {
	samples []time.Duration
	errs    []error
}

func (s *series) add(d time.Duration, err error) {
	if err != nil {
		s.errs = append(s.errs, err)
		return
	}
	s.samples = append(s.samples, d)
}

func (s *series) summary() Latency { return Summarize(s.samples) }

// sequentialResult holds the sequential series of one client kind.
type sequentialResult struct {
	l4, l4def, warm, cold, spare series
}

// measure is one measured connection.
type measure func() (time.Duration, error)

// measureSequential runs connect+SELECT 1+close one at a time, interleaving
// the matched L4 baseline (l4: a role with Waypoint's SCRAM cost), the
// default-cost L4 baseline (l4def: what a user connecting directly pays),
// Waypoint warm (the role exists) and Waypoint cold (the first connection
// of each identity), so that drift in the shared machine's load affects
// all of them alike. spare, when not nil, is Waypoint warm through the
// listener with spare backends.
func measureSequential(n int, l4, l4def, warm, spare measure, cold []measure) sequentialResult {
	var r sequentialResult
	for i := range max(n, len(cold)) {
		if i < n {
			r.l4.add(l4())
			r.l4def.add(l4def())
			r.warm.add(warm())
			if spare != nil {
				r.spare.add(spare())
			}
		}
		if i < len(cold) {
			r.cold.add(cold[i]())
		}
	}
	return r
}

// reportSequential adds the rows of a sequential result under section:
// each Waypoint figure against the matched baseline (the target: the
// proxy's own overhead, same auth cost) and, without a target, against the
// default-cost one (what a user connecting directly would pay).
func (b *run) reportSequential(section string, r sequentialResult) {
	l4, l4def := r.l4.summary(), r.l4def.summary()
	for _, k := range []struct {
		name   string
		s      series
		target Target
	}{
		{"Waypoint warm (role exists), spares off", r.warm, AtMostRatio(1.10)},
		{"Waypoint warm with spare backends", r.spare, AtMostRatio(0.8)},
		{"Waypoint cold (first connection of an identity)", r.cold, AtMostRatio(1.5)},
	} {
		if len(k.s.samples)+len(k.s.errs) == 0 {
			continue
		}
		lat := k.s.summary()
		ratio := DurationRatio(lat.P50, l4.P50)
		b.report.Add(section, Row{Name: k.name + " vs matched L4, p50/p90/p99", Waypoint: lat.String(), Baseline: l4.String(),
			Ratio: ratio, Value: ratio, Target: k.target})
		b.report.Add(section, Row{Name: "  same vs default-cost L4 (4096-iteration role; no target)", Waypoint: lat.String(),
			Baseline: l4def.String(), Ratio: DurationRatio(lat.P50, l4def.P50), Value: math.NaN()})
	}
	for name, s := range map[string]series{"matched L4": r.l4, "default-cost L4": r.l4def, "warm": r.warm, "spare": r.spare, "cold": r.cold} {
		b.failures(section+" ("+name+")", s.errs)
	}
}

// stageRecorder collects, through proxy.Options.OnStage, the setup stage
// durations of connections made one at a time, filed under the kind set
// with begin.
type stageRecorder struct {
	mu      sync.Mutex
	kind    string
	got     int
	samples map[string]map[string][]time.Duration // kind → stage → durations
}

func newStageRecorder() *stageRecorder {
	return &stageRecorder{samples: map[string]map[string][]time.Duration{}}
}

// observe is the OnStage hook.
func (r *stageRecorder) observe(stage string, d time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.kind == "" {
		return
	}
	if r.samples[r.kind] == nil {
		r.samples[r.kind] = map[string][]time.Duration{}
	}
	r.samples[r.kind][stage] = append(r.samples[r.kind][stage], d)
	r.got++
}

// tagged wraps m: the stages of its connection are filed under kind. It
// waits (at most a second) after m for every stage to be observed, since
// the last one may be recorded just after the client saw ReadyForQuery.
func (r *stageRecorder) tagged(kind string, m measure) measure {
	return func() (time.Duration, error) {
		r.mu.Lock()
		r.kind, r.got = kind, 0
		r.mu.Unlock()
		d, err := m()
		deadline := time.Now().Add(time.Second)
		for {
			r.mu.Lock()
			done := r.got >= len(metrics.Stages) || err != nil || time.Now().After(deadline)
			if done {
				r.kind = ""
			}
			r.mu.Unlock()
			if done {
				return d, err
			}
			time.Sleep(100 * time.Microsecond)
		}
	}
}

// report adds a row per stage and kind: where a connection's setup time
// goes.
func (r *stageRecorder) report(b *run) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, kind := range []string{"warm", "cold"} {
		for _, stage := range metrics.Stages {
			lat := Summarize(r.samples[kind][stage])
			b.report.Add(secStages, Row{Name: fmt.Sprintf("%s: %s", kind, stage), Waypoint: lat.String(), Ratio: math.NaN(), Value: math.NaN()})
		}
	}
}

// failures reports errors of a phase that must not fail: the smoke test
// fails on them, and both modes list the first few.
func (b *run) failures(what string, errs []error) {
	if len(errs) == 0 {
		return
	}
	b.t.Errorf("%s: %d of the connections failed; first: %v", what, len(errs), errs[0])
	b.report.Note("%s: %d failures, first: %v", what, len(errs), errs[0])
}

// psqlOnce runs psql -c 'select 1' against host:port as user and returns
// the wall time of the whole process.
func psqlOnce(psql, host, port, user, password string) (time.Duration, error) {
	ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
	defer cancel()
	dsn := fmt.Sprintf("host=%s port=%s dbname=%s user=%s sslmode=disable connect_timeout=30", host, port, benchDB, user)
	cmd := exec.CommandContext(ctx, psql, "-X", "-q", "-A", "-t", "-c", "select 1", dsn)
	cmd.Env = libpqEnv(password)
	start := time.Now()
	out, err := cmd.CombinedOutput()
	d := time.Since(start)
	if err != nil {
		return 0, fmt.Errorf("psql: %w: %s", err, bytes.TrimSpace(out))
	}
	if got := string(bytes.TrimSpace(out)); got != "1" {
		return 0, fmt.Errorf("psql printed %q, want 1", got)
	}
	return d, nil
}

// libpqEnv is a minimal environment for libpq tools: no PG* variable from
// the test's environment except the password given ("" for none).
func libpqEnv(password string) []string {
	env := []string{"PATH=/usr/bin:/bin", "LC_ALL=C"}
	if password != "" {
		env = append(env, "PGPASSWORD="+password)
	}
	return env
}

// psqlTarget is where one psql run connects.
type psqlTarget struct{ host, port, user, password string }

// pgbenchInit fills benchDB with pgbench's tables, directly as the
// superuser over the Unix socket, hands them to the admin (so Waypoint can
// grant on them) and lets the baseline role read them.
func (b *run) pgbenchInit(pgbench string) {
	t, pg := b.t, b.h.pg
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pgbench, "-i", "-q", "-s", strconv.Itoa(b.cfg.pgbenchScale),
		"-h", pg.Dir, "-p", strconv.Itoa(pg.Port), "-U", pg.SuperUser, benchDB)
	cmd.Env = libpqEnv("")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	pg.Exec(t, benchDB, fmt.Sprintf(`
		ALTER TABLE pgbench_accounts OWNER TO %[1]s;
		ALTER TABLE pgbench_branches OWNER TO %[1]s;
		ALTER TABLE pgbench_tellers OWNER TO %[1]s;
		ALTER TABLE pgbench_history OWNER TO %[1]s;
		GRANT SELECT ON ALL TABLES IN SCHEMA public TO %[2]s, %[3]s`, pg.AdminUser, directUser, matchedUser))
}

// pgbenchRun runs pgbench -S against host:port and returns its TPS.
func (b *run) pgbenchRun(pgbench, host, port, user, password string) (float64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), b.cfg.pgbenchDuration+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, pgbench, "-n", "-S",
		"-c", strconv.Itoa(b.cfg.pgbenchClients), "-j", strconv.Itoa(b.cfg.pgbenchThreads),
		"-T", strconv.Itoa(int(b.cfg.pgbenchDuration.Seconds())),
		"-h", host, "-p", port, "-U", user, benchDB)
	cmd.Env = libpqEnv(password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("pgbench: %w\n%s", err, out)
	}
	tps, err := ParseTPS(out)
	if err != nil {
		return 0, fmt.Errorf("%w\n%s", err, out)
	}
	return tps, nil
}

// copyOut runs a COPY of about n bytes out through conn into a counter and
// returns the bytes received and the throughput in MB/s (10^6 bytes).
func copyOut(conn *pgx.Conn, n int64) (int64, float64, error) {
	const rowBytes = 1001 // 1000 characters and a newline
	rows := max(n/rowBytes, 1)
	sql := fmt.Sprintf("COPY (SELECT repeat('x', 1000) FROM generate_series(1, %d)) TO STDOUT", rows)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	var w countingWriter
	start := time.Now()
	if _, err := conn.PgConn().CopyTo(ctx, &w, sql); err != nil {
		return 0, 0, fmt.Errorf("copy: %w", err)
	}
	secs := time.Since(start).Seconds()
	return w.n, float64(w.n) / 1e6 / secs, nil
}

// countingWriter is io.Discard that counts.
type countingWriter struct{ n int64 }

func (w *countingWriter) Write(p []byte) (int, error) {
	w.n += int64(len(p))
	return len(p), nil
}

// storm starts one connect+SELECT 1+close per cfg at the same instant and
// waits for all of them.
func storm(cfgs []*pgx.ConnConfig) series {
	start := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var s series
	for _, cfg := range cfgs {
		wg.Go(func() {
			<-start
			d, err := connectOnce(cfg)
			mu.Lock()
			s.add(d, err)
			mu.Unlock()
		})
	}
	time.Sleep(50 * time.Millisecond) // let every goroutine reach the barrier
	close(start)
	wg.Wait()
	return s
}

// stormConfigs returns per connections for each client, built by config.
func stormConfigs(clients []*tailnettest.Client, per int, config func(*tailnettest.Client) *pgx.ConnConfig) []*pgx.ConnConfig {
	var out []*pgx.ConnConfig
	for _, c := range clients {
		cfg := config(c)
		for range per {
			out = append(out, cfg)
		}
	}
	return out
}

// reportStorm adds a storm's rows: success against 100%, the latencies
// side by side with Waypoint's p99 against 1.2× the baseline's, and each
// path's p99 against its own sequential p50 (shown, no target: on 2 cores a
// storm measures the machine as much as the path).
func (b *run) reportStorm(name string, wp, l4 series) {
	total := len(wp.samples) + len(wp.errs)
	l4Total := len(l4.samples) + len(l4.errs)
	b.report.Add(secStorm, Row{
		Name:     name + ": succeeded",
		Waypoint: fmt.Sprintf("%d/%d", len(wp.samples), total),
		Baseline: fmt.Sprintf("%d/%d", len(l4.samples), l4Total),
		Ratio:    math.NaN(),
		Value:    Ratio(float64(len(wp.samples)), float64(total)),
		Target:   Target{Bound: AtLeast, Limit: 1, Label: "100%"},
	})
	wpLat, l4Lat := wp.summary(), l4.summary()
	b.report.Add(secStorm, Row{
		Name:     name + ": latency (ratio of p99s)",
		Waypoint: wpLat.String(),
		Baseline: l4Lat.String(),
		Ratio:    DurationRatio(wpLat.P99, l4Lat.P99),
		Value:    DurationRatio(wpLat.P99, l4Lat.P99),
		Target:   AtMostRatio(1.2),
	})
	own := DurationRatio(wpLat.P99, b.seqWarmP50)
	b.report.Add(secStorm, Row{
		Name:     name + ": p99 ÷ own sequential p50",
		Waypoint: fmt.Sprintf("%.1f×", own),
		Baseline: fmt.Sprintf("%.1f×", DurationRatio(l4Lat.P99, b.seqL4P50)),
		Ratio:    math.NaN(),
		Value:    math.NaN(),
	})
	if len(wp.errs) > 0 {
		b.report.Note("%s: %d Waypoint failures; distinct errors: %s", name, len(wp.errs), distinct(wp.errs, 3))
	}
	if len(l4.errs) > 0 {
		b.report.Note("%s: %d baseline failures; distinct errors: %s", name, len(l4.errs), distinct(l4.errs, 3))
	}
}

// distinct returns up to n distinct error messages with their counts.
func distinct(errs []error, n int) string {
	counts := map[string]int{}
	var order []string
	for _, e := range errs {
		if counts[e.Error()] == 0 {
			order = append(order, e.Error())
		}
		counts[e.Error()]++
	}
	var parts []string
	for _, m := range order[:min(n, len(order))] {
		parts = append(parts, fmt.Sprintf("%d× %q", counts[m], m))
	}
	return fmt.Sprint(parts)
}

// openIdle opens n sessions with cfg one after the other and returns them;
// the caller closes them.
func openIdle(cfg *pgx.ConnConfig, n int) ([]*pgx.Conn, error) {
	conns := make([]*pgx.Conn, 0, n)
	for range n {
		ctx, cancel := context.WithTimeout(context.Background(), connectTimeout)
		conn, err := pgx.ConnectConfig(ctx, cfg)
		cancel()
		if err != nil {
			closeAll(conns)
			return nil, err
		}
		conns = append(conns, conn)
	}
	return conns, nil
}

func closeAll(conns []*pgx.Conn) {
	for _, c := range conns {
		c.Close(context.Background())
	}
}

// mean returns the arithmetic mean of vals, or NaN for none. Rounds
// alternate between the paths, so drift in the machine's load averages out.
// median returns the middle value of vals (the mean of the two middle ones
// for an even count), NaN for none.
func median(vals []float64) float64 {
	if len(vals) == 0 {
		return math.NaN()
	}
	s := slices.Clone(vals)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}
