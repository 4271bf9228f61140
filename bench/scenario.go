package main

import (
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/muxpg/mux/bench/internal/idle"
)

// The systems compared.
const (
	sysDirect    = "direct"
	sysPgBouncer = "pgbouncer"
	sysMux       = "mux"
)

var systems = []string{sysDirect, sysPgBouncer, sysMux}

// systemTitle is how a system is named in the report.
func systemTitle(sys string) string {
	switch sys {
	case sysDirect:
		return "direct"
	case sysPgBouncer:
		return "PgBouncer"
	case sysMux:
		return "mux"
	}
	return sys
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
}

func allScenarios() []scenario {
	return []scenario{
		{key: "S-1", title: "`pgbench -S`, 1 client", clients: 1, mode: "simple"},
		{key: "S-50", title: "`pgbench -S`, 50 clients", clients: 50, mode: "simple"},
		{key: "S-1000", title: "`pgbench -S`, 1,000 clients", clients: 1000, mode: "simple"},
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
	}
	s += fmt.Sprintf(", other load %.0f%%", r.otherPct)
	if r.err != "" {
		s += " — error: " + r.err
	}
	return s
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
