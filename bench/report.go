//go:build unix

package main

import (
	"bufio"
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/muxpg/mux/bench/internal/stats"
)

// info describes the machine, the versions and the run.
type info struct {
	Date       time.Time
	NProc      int
	CPUModel   string
	MemTotal   string
	Kernel     string
	Postgres   string
	PgBouncer  string
	Pgbench    string
	MuxCommit  string
	MuxDirty   []string // files changed since the commit (outside bench/ and *.md)
	GoVersion  string
	FDLimit    uint64
	MaxPrepMsg string
	LoadStart  string // /proc/loadavg when the run began
	LoadEnd    string // and when it ended
	SetupTime  time.Duration
	BenchTime  time.Duration
	TotalTime  time.Duration
}

// revision is the commit mux was built from, and the files that differed
// from it (Markdown and the bench itself aside).
type revision struct {
	commit string
	dirty  []string
}

// revisionOf reads root's revision; called just before mux is built, so a
// commit made while the benchmark runs is not credited with its numbers.
func revisionOf(ctx context.Context, root string) revision {
	rev := revision{commit: firstLine(ctx, root, "git", "rev-parse", "--short", "HEAD")}
	if out, err := exec.CommandContext(ctx, "git", "-C", root, "status", "--porcelain", "--",
		".", ":(exclude)bench", ":(exclude)*.md").Output(); err == nil {
		for _, l := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
			if len(l) > 3 {
				rev.dirty = append(rev.dirty, strings.TrimSpace(l[3:]))
			}
		}
	}
	return rev
}

func (e *env) describe(ctx context.Context, root string, rev revision, fdLimit uint64) (*info, error) {
	in := &info{Date: time.Now().UTC(), NProc: runtime.NumCPU(), FDLimit: fdLimit, PgBouncer: e.pgbouncerVer}
	in.CPUModel = procField("/proc/cpuinfo", "model name")
	if kb, err := strconv.ParseInt(strings.TrimSuffix(procField("/proc/meminfo", "MemTotal"), " kB"), 10, 64); err == nil {
		in.MemTotal = fmt.Sprintf("%.1f GiB", float64(kb)/(1<<20))
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		in.Kernel = strings.TrimSpace(string(b))
	}
	in.LoadEnd = loadAvg()
	in.Postgres = firstLine(ctx, "", e.cluster.Bin("postgres"), "--version")
	in.Pgbench = firstLine(ctx, "", e.pgbench, "--version")
	in.GoVersion = firstLine(ctx, root, "go", "version")
	in.MuxCommit, in.MuxDirty = rev.commit, rev.dirty
	if !e.maxPrepared {
		in.MaxPrepMsg = "max_prepared_statements is not set for PgBouncer: " + e.pgbouncerVer +
			" rejects the key (it was added in PgBouncer 1.21), so PgBouncer has no prepared-statement support in transaction mode."
	}
	return in, nil
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], ", ")
}

// procField returns the value of the first "key : value" line of a /proc file.
func procField(path, key string) string {
	f, err := os.Open(path)
	if err != nil {
		return "?"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(k) == key {
			return strings.TrimSpace(v)
		}
	}
	return "?"
}

func firstLine(ctx context.Context, dir, name string, args ...string) string {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		return "? (" + err.Error() + ")"
	}
	return strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
}

// metric is one row of a scenario's table.
type metric struct {
	name string
	get  func(*runResult) float64
	fmt  func(float64) string
}

const mib = 1 << 20

func pgbenchMetrics() []metric {
	return []metric{
		{"tps", func(r *runResult) float64 { return r.tps }, fmtInt},
		{"avg latency, ms", func(r *runResult) float64 { return r.latAvgMs }, fmtFixed(3)},
		{"p99 latency, ms", func(r *runResult) float64 { return r.latP99Ms }, fmtFixed(3)},
		{"proxy CPU per 1,000 tx, ms", func(r *runResult) float64 { return r.cpuPer1k }, fmtFixed(1)},
		{"proxy peak RSS, MiB", func(r *runResult) float64 { return r.rssPeak / mib }, fmtFixed(1)},
		{"failures", func(r *runResult) float64 { return r.failures }, fmtInt},
		otherMetric,
	}
}

func idleMetrics(n int) []metric {
	get := func(f func(*idleResult) float64) func(*runResult) float64 {
		return func(r *runResult) float64 {
			if r.idle == nil {
				return math.NaN()
			}
			return f(r.idle)
		}
	}
	return []metric{
		{"proxy RSS with no client, MiB", get(func(i *idleResult) float64 { return float64(i.RSSNone) / mib }), fmtFixed(1)},
		{fmt.Sprintf("proxy RSS with %s idle clients, MiB", fmtInt(float64(n))), get(func(i *idleResult) float64 { return float64(i.RSSAll) / mib }), fmtFixed(1)},
		{"**RSS per idle client, KiB**", get(func(i *idleResult) float64 { return i.RSSPerClient / 1024 }), fmtFixed(2)},
		{fmt.Sprintf("time to connect %s clients, s", fmtInt(float64(n))), get(func(i *idleResult) float64 { return i.ConnectSeconds }), fmtFixed(1)},
		{fmt.Sprintf("`SELECT 1` that succeeded (of %s)", fmtInt(float64(3*n))), get(func(i *idleResult) float64 { return float64(i.QueryOK) }), fmtInt},
		{"failures (connections + queries)", func(r *runResult) float64 { return r.failures }, fmtInt},
		{"**p99 latency, ms**", get(func(i *idleResult) float64 { return nanIfZero(i.LatencyP99Ms, i.QueryOK) }), fmtFixed(1)},
		{"avg latency, ms", get(func(i *idleResult) float64 { return nanIfZero(i.LatencyAvgMs, i.QueryOK) }), fmtFixed(1)},
		{"proxy CPU per 1,000 queries, ms", func(r *runResult) float64 { return r.cpuPer1k }, fmtFixed(1)},
		{"proxy peak RSS, MiB", func(r *runResult) float64 { return r.rssPeak / mib }, fmtFixed(1)},
		otherMetric,
	}
}

// otherMetric is the CPU that processes outside the benchmark took during
// a run: a measure of how much other work on the machine skewed it.
var otherMetric = metric{"_other processes' CPU, % of the machine_",
	func(r *runResult) float64 { return r.otherPct }, fmtFixed(0)}

func nanIfZero(v float64, n int) float64 {
	if n == 0 {
		return math.NaN()
	}
	return v
}

func fmtInt(v float64) string {
	if math.IsNaN(v) {
		return "—"
	}
	neg := v < 0
	s := strconv.FormatInt(int64(math.Round(math.Abs(v))), 10)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "−" + b.String()
	}
	return b.String()
}

func fmtFixed(prec int) func(float64) string {
	return func(v float64) string {
		if math.IsNaN(v) {
			return "—"
		}
		return strings.Replace(strconv.FormatFloat(v, 'f', prec, 64), "-", "−", 1)
	}
}

func fmtRatio(num, den float64) string {
	if math.IsNaN(num) || math.IsNaN(den) || den == 0 {
		return "—"
	}
	return fmt.Sprintf("%.2f×", num/den)
}

// values returns a metric's value in every round of one system.
func values(runs []*runResult, m metric) []float64 {
	out := make([]float64, len(runs))
	for i, r := range runs {
		if r.skipped != "" {
			out[i] = math.NaN()
		} else {
			out[i] = m.get(r)
		}
	}
	return out
}

// cell formats "median (round 1 / round 2 / …)".
func cell(vals []float64, f func(float64) string) string {
	if len(vals) == 0 {
		return "—"
	}
	med := stats.Median(vals)
	if math.IsNaN(med) {
		return "—"
	}
	parts := make([]string, len(vals))
	for i, v := range vals {
		parts[i] = f(v)
	}
	if len(vals) == 1 {
		return f(med)
	}
	return fmt.Sprintf("**%s** (%s)", f(med), strings.Join(parts, " / "))
}

func median(rs *results, key, sys string, m metric) float64 {
	return stats.Median(values(rs.get(key, sys), m))
}

// pgbouncerX returns the PgBouncer xN target, if the run has one.
func pgbouncerX(ts []target) (target, bool) {
	for _, t := range ts {
		if t.kind == kindPgBouncer && t.procs > 1 {
			return t, true
		}
	}
	return target{}, false
}

func renderReport(in *info, o options, ts []target, scens []scenario, rs *results) string {
	var b strings.Builder
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	px, hasX := pgbouncerX(ts)

	w("# Benchmarks: mux vs PgBouncer vs direct Postgres\n\n")
	w("Written by `go run ./bench` on %s (UTC). Reproduce with that command from a\n", in.Date.Format("2006-01-02 15:04"))
	w("checkout; see the \"Benchmarks\" section of README.md. Numbers are **medians** of\n")
	w("%d interleaved rounds, followed by every round in parentheses; ratios are\n", o.rounds)
	w("mux's median divided by PgBouncer's (one process). \"mux\" in a ratio is always\n")
	w("mux as shipped, with no `workers` key.")
	if hasX {
		w(" In the `-S` scenarios with 50 and 1,000 clients\n")
		w("PgBouncer also runs as %s, %d processes sharing the port with `so_reuseport` and\n", px.title, px.procs)
		w("the pool split between them, as it is run on many cores; the ratios to it are\n")
		w("mux's median divided by its median.")
	}
	w("\n\n")

	w("## Machine and versions\n\n")
	w("| | |\n|---|---|\n")
	w("| CPUs (nproc) | %d × %s |\n", in.NProc, in.CPUModel)
	w("| memory | %s |\n", in.MemTotal)
	w("| kernel | Linux %s |\n", in.Kernel)
	w("| Postgres | %s |\n", in.Postgres)
	w("| PgBouncer | %s |\n", in.PgBouncer)
	w("| pgbench | %s |\n", in.Pgbench)
	mux := "commit `" + in.MuxCommit + "`"
	if len(in.MuxDirty) > 0 {
		mux += fmt.Sprintf(" plus uncommitted changes in %d file(s): %s", len(in.MuxDirty), strings.Join(in.MuxDirty, ", "))
	}
	w("| mux | %s |\n", mux)
	w("| Go | %s |\n", in.GoVersion)
	w("| open-files limit (proxies, pgbench, load tool) | %d |\n", in.FDLimit)
	w("| load average (1, 5, 15 min) | %s at the start, %s at the end |\n", in.LoadStart, in.LoadEnd)
	w("| run time | %s total: %s setup, %s of runs |\n\n",
		in.TotalTime.Round(time.Second), in.SetupTime.Round(time.Second), in.BenchTime.Round(time.Second))

	w("## Summary: mux / PgBouncer (medians)\n\n")
	w("Below 1.00× is better for mux except for tps. For the idle-clients scenario\n")
	w("\"CPU\" is per query and \"RSS\" is RSS per idle client.")
	if hasX {
		w(" Rows \"vs %s\" divide by\n%s's medians instead: CPU and RSS are those of its %d processes together.", px.title, px.title, px.procs)
	}
	w("\n\n")
	writeLoadNote(&b, ts, scens, rs)
	w("| scenario | tps | avg latency | p99 latency | proxy CPU per tx | proxy RSS | failures PgBouncer / mux |\n")
	w("|---|---|---|---|---|---|---|\n")
	for _, sc := range scens {
		var ms []metric
		if sc.kind == kindIdle {
			im := idleMetrics(o.idleClients)
			ms = []metric{{get: func(*runResult) float64 { return math.NaN() }}, im[7], im[6], im[8], im[2], im[5]}
		} else {
			pm := pgbenchMetrics()
			ms = []metric{pm[0], pm[1], pm[2], pm[3], pm[4], pm[5]}
		}
		row := func(title, pgb string) {
			w("| %s ", title)
			for _, m := range ms[:5] {
				w("| %s ", fmtRatio(median(rs, sc.key, sysMux, m), median(rs, sc.key, pgb, m)))
			}
			w("| %s / %s |\n", fmtInt(sumOf(rs, sc.key, pgb, ms[5])), fmtInt(sumOf(rs, sc.key, sysMux, ms[5])))
		}
		row(scenarioTitle(sc, o), sysPgBouncer)
		if hasX && px.runsIn(sc) {
			row(scenarioTitle(sc, o)+", vs "+px.title, px.key)
		}
	}
	w("\n")
	writeGoals(&b, o, scens, rs)
	writeWorkers(&b, o, ts, scens, rs)

	w("## Scenarios\n\n")
	for _, sc := range scens {
		w("### %s\n\n", scenarioTitle(sc, o))
		var ms []metric
		if sc.kind == kindIdle {
			ms = idleMetrics(o.idleClients)
		} else {
			ms = pgbenchMetrics()
		}
		sts := targetsIn(ts, sc)
		// The ratio columns: mux over each PgBouncer target of sc.
		pgbs := []target{}
		for _, t := range sts {
			if t.kind == kindPgBouncer {
				pgbs = append(pgbs, t)
			}
		}
		w("| metric ")
		for _, t := range sts {
			w("| %s ", t.title)
		}
		for _, t := range pgbs {
			w("| mux / %s ", t.title)
		}
		w("|\n|---%s|\n", strings.Repeat("|---", len(sts)+len(pgbs)))
		for _, m := range ms {
			w("| %s ", m.name)
			for _, t := range sts {
				w("| %s ", cell(values(rs.get(sc.key, t.key), m), m.fmt))
			}
			for _, t := range pgbs {
				ratio := fmtRatio(median(rs, sc.key, sysMux, m), median(rs, sc.key, t.key, m))
				if m.name == otherMetric.name {
					ratio = "—"
				}
				w("| %s ", ratio)
			}
			w("|\n")
		}
		if sc.key == "S-1" {
			w("| **added avg latency over direct, µs** ")
			med := map[string]float64{}
			for _, t := range sts {
				if t.kind == kindDirect {
					w("| — ")
					continue
				}
				d := addedLatency(rs, sc.key, t.key)
				med[t.key] = stats.Median(d)
				w("| %s ", cell(d, fmtFixed(1)))
			}
			for _, t := range pgbs {
				w("| %s ", fmtRatio(med[sysMux], med[t.key]))
			}
			w("|\n")
		}
		w("\n")
		writeNotes(&b, ts, sc, rs)
	}

	w("## Method\n\n")
	writeMethod(&b, in, o, ts)
	return b.String()
}

// writeWorkers writes the table of mux's workers targets, if the run has
// any: each against mux as shipped and against PgBouncer.
func writeWorkers(b *strings.Builder, o options, ts []target, scens []scenario, rs *results) {
	var workers []target
	for _, t := range ts {
		if t.kind == kindMux && t.workersKey {
			workers = append(workers, t)
		}
	}
	if len(workers) == 0 {
		return
	}
	px, hasX := pgbouncerX(ts)
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("## mux workers\n\n")
	w("mux with `workers = N` in its configuration, next to mux as shipped (no `workers` key)\n")
	w("in the same rounds. Medians; tps and CPU per 1,000 tx ratios are this row's median over\n")
	w("the named target's.\n\n")
	w("| scenario | mux | tps | p99 latency, ms | proxy CPU per 1,000 tx, ms | proxy peak RSS, MiB | tps / mux | tps / PgBouncer | CPU / PgBouncer ")
	if hasX {
		w("| tps / %s | CPU / %s ", px.title, px.title)
	}
	w("|\n|---|---|---|---|---|---|---|---|---")
	if hasX {
		w("|---|---")
	}
	w("|\n")
	pm := pgbenchMetrics()
	tps, p99, cpu, rss := pm[0], pm[2], pm[3], pm[4]
	for _, sc := range scens {
		if !sc.scaling {
			continue
		}
		for _, t := range append([]target{{key: sysMux, title: "mux", kind: kindMux}}, workers...) {
			name := "no `workers` key"
			if t.workersKey {
				name = fmt.Sprintf("`workers = %d`", t.workers)
			}
			mt := median(rs, sc.key, t.key, tps)
			mc := median(rs, sc.key, t.key, cpu)
			w("| %s | %s | %s | %s | %s | %s | %s | %s | %s ", sc.key, name, fmtInt(mt),
				fmtFixed(3)(median(rs, sc.key, t.key, p99)), fmtFixed(1)(mc),
				fmtFixed(1)(median(rs, sc.key, t.key, rss)),
				fmtRatio(mt, median(rs, sc.key, sysMux, tps)),
				fmtRatio(mt, median(rs, sc.key, sysPgBouncer, tps)),
				fmtRatio(mc, median(rs, sc.key, sysPgBouncer, cpu)))
			if hasX {
				w("| %s | %s ", fmtRatio(mt, median(rs, sc.key, px.key, tps)), fmtRatio(mc, median(rs, sc.key, px.key, cpu)))
			}
			w("|\n")
		}
	}
	w("\n")
}

// writeLoadNote says how much CPU other processes took during the runs.
func writeLoadNote(b *strings.Builder, ts []target, scens []scenario, rs *results) {
	var all []float64
	for _, sc := range scens {
		for _, t := range ts {
			for _, r := range rs.get(sc.key, t.key) {
				if r.skipped == "" && !math.IsNaN(r.otherPct) {
					all = append(all, r.otherPct)
				}
			}
		}
	}
	if len(all) == 0 {
		return
	}
	sort.Float64s(all)
	fmt.Fprintf(b, "During the runs, processes outside the benchmark used %.0f%% of the machine's\n", stats.Median(all))
	fmt.Fprintf(b, "CPU (median over runs; from %.0f%% to %.0f%%; per run in the tables below).\n", all[0], all[len(all)-1])
	if stats.Median(all) > 10 {
		b.WriteString("**The machine was not idle: these numbers are skewed by other work and vary\n")
		b.WriteString("more from round to round than they would on a quiet machine.**\n")
	}
	b.WriteString("\n")
}

func scenarioTitle(sc scenario, o options) string {
	if sc.kind == kindIdle {
		return fmt.Sprintf("%s idle clients, then `SELECT 1` from every client in 3 rounds", fmtInt(float64(o.idleClients)))
	}
	return sc.title
}

func sumOf(rs *results, key, sys string, m metric) float64 {
	runs := rs.get(key, sys)
	if len(runs) == 0 {
		return math.NaN()
	}
	var s float64
	for _, v := range values(runs, m) {
		if !math.IsNaN(v) {
			s += v
		}
	}
	return s
}

// addedLatency is, per round, the system's mean latency minus direct's in
// the same round, in microseconds.
func addedLatency(rs *results, key, sys string) []float64 {
	d := rs.get(key, sysDirect)
	s := rs.get(key, sys)
	out := make([]float64, len(s))
	for i := range s {
		out[i] = math.NaN()
		if i < len(d) && s[i].skipped == "" && d[i].skipped == "" {
			out[i] = (s[i].latAvgMs - d[i].latAvgMs) * 1000
		}
	}
	return out
}

func writeNotes(b *strings.Builder, ts []target, sc scenario, rs *results) {
	var notes []string
	for _, t := range targetsIn(ts, sc) {
		if t.procs > 1 {
			var split []string
			for _, r := range rs.get(sc.key, t.key) {
				if len(r.procCPU) > 1 {
					split = append(split, r.cpuSplit())
				}
			}
			if len(split) > 0 {
				notes = append(notes, fmt.Sprintf("- %s: each process's share of their CPU, per round: %s", t.title, strings.Join(split, ", ")))
			}
		}
		seen := map[string]bool{}
		for i, r := range rs.get(sc.key, t.key) {
			msg := r.err
			if r.skipped != "" {
				msg = "not run: " + r.skipped
			}
			if msg == "" {
				continue
			}
			if seen[msg] {
				notes = append(notes, fmt.Sprintf("- %s, round %d: same as above", t.title, i+1))
				continue
			}
			seen[msg] = true
			notes = append(notes, fmt.Sprintf("- %s, round %d: %s", t.title, i+1, oneLine(msg, 300)))
		}
	}
	if len(notes) > 0 {
		fmt.Fprintf(b, "%s\n\n", strings.Join(notes, "\n"))
	}
}

func oneLine(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > n {
		s = s[:n] + "…"
	}
	return s
}

// writeGoals checks the "done when" targets of issue 13 against this run.
func writeGoals(b *strings.Builder, o options, scens []scenario, rs *results) {
	have := map[string]bool{}
	for _, sc := range scens {
		have[sc.key] = true
	}
	pm := pgbenchMetrics()
	tps, cpu, fails := pm[0], pm[3], pm[5]
	var lines []string
	verdict := func(ok bool) string {
		if ok {
			return "**met**"
		}
		return "**not met**"
	}
	for _, g := range []struct{ key, clients string }{{"S-50", "50"}, {"S-1000", "1,000"}} {
		key := g.key
		if !have[key] {
			continue
		}
		tr := median(rs, key, sysMux, tps) / median(rs, key, sysPgBouncer, tps)
		cr := median(rs, key, sysMux, cpu) / median(rs, key, sysPgBouncer, cpu)
		lines = append(lines, fmt.Sprintf("| `-S` at %s clients: tps ≥ 0.95× and CPU per tx ≤ 1.2× PgBouncer's (beyond: ≤ 1.0×) | tps %.2f×, CPU %.2f× | %s |",
			g.clients, tr, cr, verdict(tr >= 0.95 && cr <= 1.2)))
	}
	if have["S-1"] {
		p := stats.Median(addedLatency(rs, "S-1", sysPgBouncer))
		m := stats.Median(addedLatency(rs, "S-1", sysMux))
		lines = append(lines, fmt.Sprintf("| `-S` at 1 client: mux's added latency over direct ≤ 1.3× PgBouncer's | mux %+.1f µs, PgBouncer %+.1f µs (%.2f×) | %s |",
			m, p, m/p, verdict(m <= 1.3*p)))
	}
	if have["idle"] {
		im := idleMetrics(o.idleClients)
		per := median(rs, "idle", sysMux, im[2])
		okAll := true
		for _, r := range rs.get("idle", sysMux) {
			if r.idle == nil || r.idle.QueryOK != 3*o.idleClients {
				okAll = false
			}
		}
		pm99 := median(rs, "idle", sysMux, im[6])
		pp99 := median(rs, "idle", sysPgBouncer, im[6])
		lines = append(lines, fmt.Sprintf("| %s clients: RSS per idle client ≤ 4 KiB, all %s queries succeed, p99 ≤ PgBouncer's | %.2f KiB; all succeeded: %v; p99 %.1f vs %.1f ms | %s |",
			fmtInt(float64(o.idleClients)), fmtInt(float64(3*o.idleClients)), per, okAll, pm99, pp99,
			verdict(per <= 4 && okAll && pm99 <= pp99)))
	}
	if have["prepared-50"] && have["extended-50"] {
		f := sumOf(rs, "prepared-50", sysMux, fails)
		r := median(rs, "prepared-50", sysMux, tps) / median(rs, "extended-50", sysMux, tps)
		lines = append(lines, fmt.Sprintf("| `-M prepared -S` at 50: 0 failures and ≥ 0.9× mux's own `-M extended` tps | %s failures, %.2f× | %s |",
			fmtInt(f), r, verdict(f == 0 && r >= 0.9)))
	}
	if len(lines) == 0 {
		return
	}
	fmt.Fprintf(b, "## Issue 13 targets, checked against this run\n\n| target | this run | |\n|---|---|---|\n%s\n\n", strings.Join(lines, "\n"))
}

func writeMethod(b *strings.Builder, in *info, o options, ts []target) {
	w := func(s string) { b.WriteString(s + "\n") }
	w(fmt.Sprintf("- One machine: Postgres, the proxy, pgbench and the load tool share its %d CPUs.", in.NProc))
	w(fmt.Sprintf("- Postgres: a throwaway cluster (internal/pgtest: fsync off, max_connections %d),", o.maxConns))
	w(fmt.Sprintf("  database `bench` filled once with `pgbench -i -s %d`.", o.scale))
	w(fmt.Sprintf("- Both proxies: TCP on 127.0.0.1, transaction pooling, pool size %d, client authentication", poolSize))
	w("  SCRAM-SHA-256 against the role's stored secret (PgBouncer's userlist.txt and mux's `[users]`")
	w("  hold the `pg_authid.rolpassword` value), log-in to Postgres with the role's password given")
	w("  in the database entry, client limit 11,000. Everything else is each proxy's default; mux")
	w("  gets `http_listen = \"\"` only so that runs do not compete for its metrics port. mux runs")
	w("  without GOMAXPROCS or other tuning. PgBouncer runs as the `postgres` OS user when the")
	w("  benchmark runs as root. Both log to a file, at their default levels.")
	if in.MaxPrepMsg != "" {
		w("- " + in.MaxPrepMsg)
	}
	if px, ok := pgbouncerX(ts); ok {
		pools := splitPool(poolSize, px.procs)
		ps := make([]string, len(pools))
		for i, n := range pools {
			ps[i] = strconv.Itoa(n)
		}
		w(fmt.Sprintf("- %s: %d PgBouncer processes with `so_reuseport = 1` listening on the same port, so", px.title, px.procs))
		w("  that the kernel hands each new connection to one of them, as PgBouncer is run on many cores;")
		w(fmt.Sprintf("  `default_pool_size` %s (the pool of %d split between them), the rest as for one", strings.Join(ps, ", "), poolSize))
		w("  PgBouncer. A run starts when a client logs in and /proc/net/tcp shows every process listening.")
		w("  Its CPU per transaction is that of all its processes together, its peak RSS the sum of theirs;")
		w("  each process's share of the CPU is noted under the scenario. It runs in the `-S` scenarios")
		w("  with 50 and 1,000 clients: at 1 client one process serves everything.")
	}
	var workers []string
	for _, t := range ts {
		if t.kind == kindMux && t.workersKey {
			workers = append(workers, strconv.Itoa(t.workers))
		}
	}
	if len(workers) > 0 {
		w(fmt.Sprintf("- mux workers=N (N = %s): mux with `workers = N` added to its configuration, otherwise", strings.Join(workers, ", ")))
		w("  the same; in the `-S` scenarios with 50 and 1,000 clients. Ratios labelled mux use mux")
		w("  without the key.")
	}
	w("- Every run starts a fresh proxy process and stops it afterwards, so CPU and RSS belong to that")
	w(fmt.Sprintf("  run alone. Rounds are interleaved: in each of the %d rounds every scenario runs against", o.rounds))
	w("  direct, then each proxy target, in an order that is reversed every other round.")
	w(fmt.Sprintf("- pgbench: `pgbench -n -S -M <mode> -c <clients> -j 2 -T %d -l` (`-j 1` for one client;", o.duration))
	w(fmt.Sprintf("  `-T %d` at 1,000 clients: one more second per 100 clients, because pgbench's clock runs", o.duration+10))
	w("  while its clients log in),")
	w("  as user `bench` over TCP. **tps** is pgbench's \"without initial connection time\". **avg** and")
	w("  **p99 latency** are exact, computed from pgbench's per-transaction log (`-l`) over every")
	w("  successful transaction (p99 by the nearest-rank method).")
	w("  **failures** are pgbench's failed transactions plus clients it reports as aborted.")
	w("- **proxy CPU per 1,000 tx**: the proxy process's user + system CPU time (utime + stime in")
	w("  /proc/<pid>/stat, 10 ms resolution) from just before pgbench starts to just after it exits")
	w("  (so it includes the clients' log-ins and log-outs), times 1,000 / successful transactions;")
	w("  the same number is µs per transaction. **proxy peak RSS** is VmHWM from /proc/<pid>/status at")
	w("  the end of the run.")
	w("- **other processes' CPU**: the machine's user + system + steal CPU time (/proc/stat) during the")
	w("  run minus that of Postgres (the postmaster and its children), the proxy, pgbench or the load")
	w("  tool and the benchmark itself, as a share of all CPUs' time (interrupt time, which the kernel")
	w("  charges to no process, is left out). A few percent on a quiet machine; more means other work")
	w("  competed with the run.")
	w("- A run in which pgbench aborted clients shows only its failures: what the remaining clients")
	w("  measured does not describe the scenario.")
	w(fmt.Sprintf("- Idle clients: `bench/idleclients` (Go, pgx's pgconn) opens %s connections through the",
		fmtInt(float64(o.idleClients))))
	w("  proxy, 50 log-ins at a time, and keeps them logged in and idle. **RSS per idle client** =")
	w(fmt.Sprintf("  (VmRSS 3 s after the last one logged in − VmRSS before the first) / %s (3 s: mux parks a",
		fmtInt(float64(o.idleClients))))
	w("  client idle for 1 s, checking every 0.5 s; PgBouncer has nothing to wait for). Then, in each of 3")
	w("  rounds, every client sends `SELECT 1` (simple protocol) at the same moment and the round")
	w("  ends when all have answered; latency is per query, from send to result, and **proxy CPU**")
	w("  covers the 3 rounds only. Direct Postgres is not run: the clients exceed max_connections.")
	w("  The same tool runs alone: `go run ./bench/idleclients -h`.")
}

// summaryText is the short table printed at the end of a run: median tps
// (idle: p99 ms) of every target, "—" where it did not run, then mux's
// ratio to each PgBouncer target.
func summaryText(ts []target, scens []scenario, rs *results) string {
	var b strings.Builder
	var pgbs []target
	const col = 17
	fmt.Fprintf(&b, "\n%-14s", "scenario")
	for _, t := range ts {
		fmt.Fprintf(&b, " %*s", col, t.key)
		if t.kind == kindPgBouncer {
			pgbs = append(pgbs, t)
		}
	}
	for _, t := range pgbs {
		fmt.Fprintf(&b, " %*s", col, "mux/"+t.key)
	}
	fmt.Fprintf(&b, "   %s\n", "(median tps; idle: p99 ms)")
	pm := pgbenchMetrics()
	for _, sc := range scens {
		m := pm[0]
		f := fmtInt
		if sc.kind == kindIdle {
			m = idleMetrics(0)[6]
			f = fmtFixed(1)
		}
		fmt.Fprintf(&b, "%-14s", sc.key)
		for _, t := range ts {
			fmt.Fprintf(&b, " %*s", col, f(median(rs, sc.key, t.key, m)))
		}
		x := median(rs, sc.key, sysMux, m)
		for _, t := range pgbs {
			fmt.Fprintf(&b, " %*s", col, fmtRatio(x, median(rs, sc.key, t.key, m)))
		}
		b.WriteString("\n")
	}
	return b.String()
}
