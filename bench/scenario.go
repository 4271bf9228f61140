//go:build unix

package main

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/muxpg/mux/bench/internal/idle"
)

// The keys of the three systems every scenario runs against. Results are
// kept by target key, and a ratio labelled "mux" is always the default mux
// (sysMux, no workers key) over one PgBouncer process (sysPgBouncer).
const (
	sysDirect    = "direct"
	sysPgBouncer = "pgbouncer"
	sysMux       = "mux"
)

// poolSize is the server pool of each proxy: default_pool_size of the one
// PgBouncer and of mux; PgBouncer xN splits it between its processes.
const poolSize = 20

type systemKind int

const (
	kindDirect systemKind = iota
	kindPgBouncer
	kindMux
)

// target is one system the scenarios run against: direct Postgres, one
// PgBouncer, N PgBouncers sharing a port, mux, or mux with a workers key.
type target struct {
	key   string // in results, in logs and in the names of run directories
	title string // in the report
	kind  systemKind
	// procs is the number of PgBouncer processes; more than 1 means they
	// listen on one port with so_reuseport and split poolSize.
	procs int
	// workers is written to mux's configuration as `workers`; 0 leaves the
	// key out (mux builds that predate it reject it).
	workers int
	// workersKey: workers is written (a -mux-workers target), 0 included.
	workersKey bool
	// scalingOnly targets run only in the scenarios marked scaling.
	scalingOnly bool
}

func (t target) runsIn(sc scenario) bool { return !t.scalingOnly || sc.scaling }

// pgbouncerXKey is the key of the PgBouncer xN target, n > 1.
func pgbouncerXKey(n int) string { return fmt.Sprintf("pgbouncer-x%d", n) }

// targetsOf lists the targets of a run: the three systems, then PgBouncer
// xN (unless -pgbouncer-procs is below 2) and one mux per -mux-workers value.
func targetsOf(o options) []target {
	ts := []target{
		{key: sysDirect, title: "direct", kind: kindDirect},
		{key: sysPgBouncer, title: "PgBouncer", kind: kindPgBouncer, procs: 1},
	}
	if o.pgbouncerProcs > 1 {
		ts = append(ts, target{key: pgbouncerXKey(o.pgbouncerProcs), title: fmt.Sprintf("PgBouncer x%d", o.pgbouncerProcs),
			kind: kindPgBouncer, procs: o.pgbouncerProcs, scalingOnly: true})
	}
	ts = append(ts, target{key: sysMux, title: "mux", kind: kindMux})
	for _, w := range o.muxWorkers {
		ts = append(ts, target{key: fmt.Sprintf("mux-workers-%d", w), title: fmt.Sprintf("mux workers=%d", w),
			kind: kindMux, workers: w, workersKey: true, scalingOnly: true})
	}
	return ts
}

// targetsIn is the subset of ts that runs in sc, in the same order.
func targetsIn(ts []target, sc scenario) []target {
	var out []target
	for _, t := range ts {
		if t.runsIn(sc) {
			out = append(out, t)
		}
	}
	return out
}

// findTarget returns the target with key, if ts has it.
func findTarget(ts []target, key string) (target, bool) {
	for _, t := range ts {
		if t.key == key {
			return t, true
		}
	}
	return target{}, false
}

type scenarioKind int

const (
	kindPgbench scenarioKind = iota
	kindIdle
)

// scenario is one workload.
type scenario struct {
	key     string
	title   string
	kind    scenarioKind
	clients int    // pgbench -c; for kindIdle set from -idle-clients
	mode    string // pgbench -M
	// scaling scenarios also run the targets that ask how a proxy uses
	// more cores (PgBouncer xN, mux workers=N): the `-S` ones with many
	// clients, where one process is the limit. At 1 client, or in the
	// other modes, they would only repeat the single process's numbers.
	scaling bool
}

func allScenarios() []scenario {
	return []scenario{
		{key: "S-1", title: "`pgbench -S`, 1 client", clients: 1, mode: "simple"},
		{key: "S-50", title: "`pgbench -S`, 50 clients", clients: 50, mode: "simple", scaling: true},
		{key: "S-1000", title: "`pgbench -S`, 1,000 clients", clients: 1000, mode: "simple", scaling: true},
		{key: "extended-50", title: "`pgbench -M extended -S`, 50 clients", clients: 50, mode: "extended"},
		{key: "prepared-50", title: "`pgbench -M prepared -S`, 50 clients", clients: 50, mode: "prepared"},
		{key: "idle", title: "idle clients, then `SELECT 1` from every client in 3 rounds", kind: kindIdle},
	}
}

func scenarioKeys() string {
	var keys []string
	for _, s := range allScenarios() {
		keys = append(keys, s.key)
	}
	return strings.Join(keys, ", ")
}

func selectScenarios(only string) ([]scenario, error) {
	all := allScenarios()
	if only == "" {
		return all, nil
	}
	var out []scenario
	for _, k := range strings.Split(only, ",") {
		k = strings.TrimSpace(k)
		found := false
		for _, s := range all {
			if strings.EqualFold(s.key, k) {
				out = append(out, s)
				found = true
			}
		}
		if !found {
			return nil, fmt.Errorf("-only: unknown scenario %q (have %s)", k, scenarioKeys())
		}
	}
	return out, nil
}

// runResult is what one run of one scenario against one system measured.
// Unmeasured values are NaN.
type runResult struct {
	skipped string // why the run did not happen; "" if it did
	err     string // the first error, if any

	// pgbench scenarios
	tps        float64
	latAvgMs   float64
	latP99Ms   float64
	tx         float64 // successful transactions
	failedTx   float64 // pgbench's "number of failed transactions"
	aborted    float64 // clients pgbench reported as aborted
	exitStatus int
	invalid    bool // clients aborted: tps, latency and CPU are not shown

	// both kinds
	cpuPer1k float64 // proxy CPU, ms per 1,000 transactions or queries
	rssPeak  float64 // proxy VmHWM, bytes
	failures float64 // pgbench: failed transactions + aborted clients; idle: failed connections + failed queries

	// procCPU is each proxy process's CPU time during the run, when the
	// proxy has more than one (PgBouncer xN); cpuPer1k is their sum.
	procCPU []time.Duration

	clientCPU time.Duration // CPU time of pgbench or the load tool
	otherPct  float64       // CPU used by other processes, % of the machine

	// idle scenario
	idle *idleResult
}

func newRunResult() *runResult {
	n := math.NaN()
	return &runResult{tps: n, latAvgMs: n, latP99Ms: n, tx: n, failedTx: n, aborted: n,
		cpuPer1k: n, rssPeak: n, failures: n, otherPct: n}
}

func (r *runResult) summary() string {
	if r.skipped != "" {
		return "skipped: " + r.skipped
	}
	var s string
	if r.idle != nil {
		i := r.idle
		s = fmt.Sprintf("%.2f KiB/idle client, %d/%d queries ok, p99 %.1f ms, %.1f ms CPU/1k queries, connect %.1f s",
			i.RSSPerClient/1024, i.QueryOK, i.Queries, i.LatencyP99Ms, r.cpuPer1k, i.ConnectSeconds)
	} else {
		s = fmt.Sprintf("%8.0f tps, avg %.3f ms, p99 %.3f ms, failures %.0f", r.tps, r.latAvgMs, r.latP99Ms, r.failures)
		if !math.IsNaN(r.cpuPer1k) {
			s += fmt.Sprintf(", %.1f ms CPU/1k tx, peak RSS %.1f MiB", r.cpuPer1k, r.rssPeak/(1<<20))
		}
		if len(r.procCPU) > 1 {
			s += ", CPU split " + r.cpuSplit()
		}
	}
	s += fmt.Sprintf(", other load %.0f%%", r.otherPct)
	if r.err != "" {
		s += " — error: " + r.err
	}
	return s
}

// cpuSplit is each process's share of the proxy's CPU time, "52/48%".
func (r *runResult) cpuSplit() string {
	var total time.Duration
	for _, d := range r.procCPU {
		total += d
	}
	if total <= 0 {
		return "—"
	}
	parts := make([]string, len(r.procCPU))
	for i, d := range r.procCPU {
		parts[i] = fmt.Sprintf("%.0f", 100*float64(d)/float64(total))
	}
	return strings.Join(parts, "/") + "%"
}

// idleResult is the JSON printed by bench/idleclients.
type idleResult = idle.Result

// results holds every run, by scenario key and system, in round order.
type results struct {
	runs map[string]map[string][]*runResult
}

func newResults() *results {
	return &results{runs: map[string]map[string][]*runResult{}}
}

func (rs *results) add(key, sys string, r *runResult) {
	m := rs.runs[key]
	if m == nil {
		m = map[string][]*runResult{}
		rs.runs[key] = m
	}
	m[sys] = append(m[sys], r)
}

func (rs *results) get(key, sys string) []*runResult {
	return rs.runs[key][sys]
}
