//go:build unix

package main

import (
	"fmt"
	"math"
	"strings"
	"time"
)

// rssTrend is the RSS over the judged window of the load phase.
type rssTrend struct {
	n         int           // samples in the window
	from, to  time.Duration // first and last sample's time
	firstMean float64       // mean RSS of the window's first two samples, bytes
	lastMean  float64       // mean RSS of its last two
	pct       float64       // (lastMean - firstMean) / firstMean, percent
	fitPct    float64       // least-squares line's rise over the window, percent of its start value: the verdict
	min, max  int64
}

// rssWindow computes the trend over the load samples whose time is at
// least duration - window (the whole load phase if it is shorter).
func rssWindow(samples []sample, duration, window time.Duration) (rssTrend, bool) {
	if window > duration {
		window = duration
	}
	var ts, vs []float64
	var tr rssTrend
	for _, s := range samples {
		if s.phase != "load" || s.t < duration-window || s.rss <= 0 {
			continue
		}
		if tr.n == 0 {
			tr.from, tr.min, tr.max = s.t, s.rss, s.rss
		}
		tr.n++
		tr.to = s.t
		tr.min = min(tr.min, s.rss)
		tr.max = max(tr.max, s.rss)
		ts = append(ts, s.t.Seconds())
		vs = append(vs, float64(s.rss))
	}
	if tr.n < 4 {
		return tr, false
	}
	tr.firstMean = (vs[0] + vs[1]) / 2
	tr.lastMean = (vs[len(vs)-2] + vs[len(vs)-1]) / 2
	tr.pct = 100 * (tr.lastMean - tr.firstMean) / tr.firstMean
	slope, intercept := linearFit(ts, vs)
	start := intercept + slope*ts[0]
	if start > 0 {
		tr.fitPct = 100 * slope * (ts[len(ts)-1] - ts[0]) / start
	}
	return tr, true
}

// linearFit is the least-squares line y = intercept + slope*x.
func linearFit(xs, ys []float64) (slope, intercept float64) {
	n := float64(len(xs))
	var sx, sy, sxx, sxy float64
	for i := range xs {
		sx += xs[i]
		sy += ys[i]
		sxx += xs[i] * xs[i]
		sxy += xs[i] * ys[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0, sy / n
	}
	slope = (n*sxy - sx*sy) / d
	return slope, (sy - slope*sx) / n
}

// judge decides the verdicts.
func judge(r *result) []verdict {
	var vs []verdict
	b, a := r.baseline, r.after

	gv := verdict{name: "goroutines back to baseline"}
	if !b.metricsRead || !a.metricsRead {
		gv.detail = "could not read go_goroutines: " + strings.TrimPrefix(a.problem+"; "+b.problem, "; ")
	} else {
		gv.ok = a.goroutines <= b.goroutines+r.o.goroutineSlack
		gv.detail = fmt.Sprintf("baseline %d, %v after the clients disconnected %d (%+d; allowed +%d)",
			b.goroutines, r.o.settle, a.goroutines, a.goroutines-b.goroutines, r.o.goroutineSlack)
	}
	vs = append(vs, gv)

	fv := verdict{name: "file descriptors back to baseline"}
	if b.fds == 0 || a.fds == 0 {
		fv.detail = "could not count /proc/<pid>/fd: " + strings.TrimPrefix(a.problem+"; "+b.problem, "; ")
	} else {
		fv.ok = a.fds <= b.fds+r.o.fdSlack
		fv.detail = fmt.Sprintf("baseline %d, %v after the clients disconnected %d (%+d; allowed +%d)",
			b.fds, r.o.settle, a.fds, a.fds-b.fds, r.o.fdSlack)
	}
	vs = append(vs, fv)

	window := min(r.o.window, r.o.duration)
	rv := verdict{name: fmt.Sprintf("RSS growth over the last %v < %g%%", window, r.o.rssLimitPct)}
	if tr, ok := rssWindow(r.samples, r.o.duration, r.o.window); !ok {
		rv.detail = fmt.Sprintf("only %d samples in the window; need 4 (lengthen -duration or shorten -interval)", tr.n)
	} else {
		rv.ok = tr.fitPct < r.o.rssLimitPct
		rv.detail = fmt.Sprintf("least-squares line through all %d samples from t=%s to t=%s rises %+.2f%% across the window (range %.1f–%.1f MiB); for comparison, the mean of the last two samples against the first two: %.1f → %.1f MiB, %+.2f%%",
			tr.n, fmtT(tr.from), fmtT(tr.to), tr.fitPct, mib(tr.min), mib(tr.max),
			tr.firstMean/(1<<20), tr.lastMean/(1<<20), tr.pct)
	}
	vs = append(vs, rv)

	var errs int64
	for k := range nKinds {
		errs += r.kindErrs[k]
	}
	ev := verdict{name: "no client errors, mux stayed up", ok: errs == 0 && r.muxUp && r.stoppedOK}
	ev.detail = fmt.Sprintf("%d client errors; mux running at the end: %v; all clients disconnected in time: %v", errs, r.muxUp, r.stoppedOK)
	vs = append(vs, ev)
	return vs
}

// report renders docs/SOAK.md; its links are relative to docs/.
func report(r *result) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	o := r.o
	verdict := "PASS"
	if !r.pass() {
		verdict = "FAIL"
	}
	p("# Soak test\n\n")
	p("Written by `go run ./bench/soak` (see [bench/soak](../bench/soak/main.go)); the last run is recorded here. Every number below comes from that run.\n\n")
	p("**Result: %s.** %d clients through mux for %v, sampled every %v.\n\n", verdict, o.clients, o.duration, o.interval)

	p("## Verdicts\n\n")
	for _, v := range r.verdicts {
		mark := "PASS"
		if !v.ok {
			mark = "FAIL"
		}
		p("- **%s — %s**: %s\n", mark, v.name, v.detail)
	}
	if tr, ok := rssWindow(r.samples, o.duration, o.window); ok {
		p("\nRSS at the start of the load phase %.1f MiB (first load sample), at its end %.1f MiB; over the judged window %.1f → %.1f MiB.\n",
			mib(firstLoad(r.samples).rss), mib(lastLoad(r.samples).rss), tr.firstMean/(1<<20), tr.lastMean/(1<<20))
	}
	p("Before the clients (baseline) / %v after they left: goroutines %d / %d, fds %d / %d, RSS %.1f / %.1f MiB, mux_clients %d / %d, mux_servers %d / %d.\n\n",
		o.settle, r.baseline.goroutines, r.after.goroutines, r.baseline.fds, r.after.fds,
		mib(r.baseline.rss), mib(r.after.rss), r.baseline.muxClients, r.after.muxClients,
		r.baseline.muxServers, r.after.muxServers)

	p("## Run\n\n")
	p("| | |\n|---|---|\n")
	p("| command | `%s` |\n", r.cmdline)
	p("| started / finished | %s / %s |\n", r.started.UTC().Format("2006-01-02 15:04:05 UTC"), r.finished.UTC().Format("15:04:05 UTC"))
	dirty := ""
	if r.dirty {
		dirty = " (working tree had uncommitted changes; mux was built from it)"
	}
	p("| mux commit | `%s`%s |\n", r.commit, dirty)
	p("| machine | %d CPUs (%s), %.1f GiB memory, Linux %s; load average at start %s, at end %s |\n",
		r.machine.nproc, r.machine.cpu, float64(r.machine.memTotal)/(1<<30), r.machine.kernel,
		r.machine.loadStart, r.machine.loadEnd)
	p("| Go / PostgreSQL | %s / %s |\n", r.goVer, r.pgVer)
	p("| clients | %d: %s |\n", o.clients, kindSummary(o.clients))
	p("| think time | mean %v, uniform in [%v, %v]; every fifth client (reconnecting ones aside) %d× that, so that mux parks it between transactions |\n", o.think, o.think/2, o.think*3/2, slowThinker)
	p("| logins | %d in flight at most while connecting; all %d in %v; %d logins in all (reconnecting clients included) |\n",
		o.connectConc, o.clients, r.rampTime.Round(100*time.Millisecond), r.logins)
	p("| mux | separate process: transaction mode, default_pool_size %d, max_client_conn %d, SCRAM-SHA-256, otherwise shipped defaults; open files %s |\n",
		o.poolSize, o.maxClientConn, r.fdLimit)
	p("| Postgres | throwaway cluster (internal/pgtest), max_connections 100, fsync off; `pgbench -i -s %d` run against it directly |\n", o.scale)
	p("| verdict settings | settle %v, goroutine slack +%d, fd slack +%d, RSS window %v, RSS limit %g%% |\n\n",
		o.settle, o.goroutineSlack, o.fdSlack, min(o.window, o.duration), o.rssLimitPct)

	p("### Work done\n\n| client kind | clients | units of work | errors |\n|---|---:|---:|---:|\n")
	counts := kindCounts(o.clients)
	var tx, errs int64
	for k := range nKinds {
		p("| %s | %d | %d | %d |\n", kindNames[k], counts[k], r.kindTx[k], r.kindErrs[k])
		tx += r.kindTx[k]
		errs += r.kindErrs[k]
	}
	p("| total | %d | %d | %d |\n\n", o.clients, tx, errs)
	p("Notifications received by listeners: %d.\n\n", r.notes)
	if len(r.errList) > 0 {
		p("Client errors (count × kind: message):\n\n")
		for _, e := range r.errList {
			p("- %s\n", strings.ReplaceAll(e, "\n", " "))
		}
		p("\n")
	}
	if len(r.muxWarnings) > 0 {
		p("mux log lines at warn level or above:\n\n```\n%s\n```\n\n", strings.Join(r.muxWarnings, "\n"))
	} else {
		p("mux logged nothing at warn level or above.\n\n")
	}

	p("## Samples\n\n")
	p("`t` is the time since the load phase began (ramp rows, `r+`: since the clients started connecting). ")
	p("RSS is VmRSS from `/proc/<pid>/status`, fds the entries of `/proc/<pid>/fd`, goroutines `go_goroutines` and heap `go_memstats_heap_inuse_bytes` from mux's `/metrics`; ")
	p("tps and errors are the clients' completed units of work and errors per second and in total since the previous row; open is the client connections open.\n\n")
	p("| phase | t | open | tps | errors | RSS MiB | fds | goroutines | heap MiB | mux_clients | parked | mux_servers |\n")
	p("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for _, s := range r.samples {
		t := fmtT(s.t)
		switch s.phase {
		case "baseline":
			t = "—"
		case "ramp":
			t = "r+" + t
		}
		p("| %s | %s | %d | %.0f | %d | %.1f | %d | %d | %.1f | %d | %d | %d |", s.phase, t, s.open, s.tps, s.errs,
			mib(s.rss), s.fds, s.goroutines, mib(s.heapInuse), s.muxClients, s.muxParked, s.muxServers)
		if s.problem != "" {
			p(" %s", s.problem)
		}
		p("\n")
	}

	p("\n## Method\n\n")
	p("1. Start a throwaway Postgres, create the role and database `soak`, run `pgbench -i -s %d` against Postgres directly (%d accounts).\n", o.scale, o.scale*100000)
	p("2. Build `./cmd/mux` and run it as its own process on free ports (clients and `http_listen`). This program first raises its open-file soft limit to the hard limit, which mux inherits (and Go in mux raises its own soft limit to the hard one too).\n")
	p("3. Warm the pool: %d clients each hold a transaction open until all have one (so mux opens every server of the pool), then commit and leave; one also LISTENs and UNLISTENs. Wait %v and take the **baseline** sample. The baseline therefore already has the pool's servers open, as the end does; without that, idle pooled servers would show up as growth.\n", o.poolSize, o.settle)
	p("4. Start %d clients (pgx v5 / pgconn, at most %d logins in flight). Every client thinks between units of work. The kinds:\n", o.clients, o.connectConc)
	p("   - `prepared` (pgx default mode: statement cache, named prepared statements; 8 query texts), `describe-exec` (unnamed statement: Parse/Describe, then Bind/Execute in a second round trip), `simple` (simple protocol), `prepared-churn` (300 query texts through a 16-entry pgx cache, so statements are closed and re-prepared, and mux's per-server limit of %d evicts): a unit is 70%% `SELECT abalance FROM pgbench_accounts WHERE aid = $1`, 30%% `BEGIN; UPDATE pgbench_accounts …; SELECT …; COMMIT`.\n", 200)
	p("   - `listen-notify`: LISTENs on its own channel; a unit is NOTIFY on it and waiting (≤ %v) for that very payload to come back; every 50th unit UNLISTENs and LISTENs again.\n", notifyTimeout)
	p("   - `reconnect`: a unit is log in, run one statement, leave; three in four run a SELECT and close cleanly, one in four run `BEGIN` and an UPDATE and then drop the socket without Terminate.\n")
	p("   - `set`: a unit first checks (`current_setting`) that the settings it made earlier are still in force on whichever server it has now, then makes one: `SET application_name`, `set_config('soak.tag', …, false)`, or `SET LOCAL` in a transaction (which must not stick). A mismatch is a client error.\n")
	p("5. When all have logged in, run for %v and sample every %v.\n", o.duration, o.interval)
	p("6. Stop the clients (each finishes its unit and closes cleanly), wait %v, take the **after** sample.\n\n", o.settle)
	p("Verdicts: goroutines and fds after ≤ baseline + slack (a few for the readiness prober's and the scrape's own short-lived connections). ")
	p("RSS: a least-squares line is fitted through every load sample of the last %v; its rise from the first to the last sample's time, as a share of its value at the first, must be below %g%%. ", min(o.window, o.duration), o.rssLimitPct)
	p("A line through all the window's samples is used rather than two samples at each end because Go's heap grows and shrinks between collections, so any single sample can sit a few percent off the trend; the two-ends comparison (mean of the first two samples against the mean of the last two) is shown beside it, not judged. ")
	p("Any client error, mux exiting, or clients that do not finish within 2 minutes of being stopped also fails the run. The program exits 1 when a verdict fails.\n")
	return b.String()
}

func firstLoad(ss []sample) sample {
	for _, s := range ss {
		if s.phase == "load" {
			return s
		}
	}
	return sample{}
}

func lastLoad(ss []sample) sample {
	var out sample
	for _, s := range ss {
		if s.phase == "load" {
			out = s
		}
	}
	return out
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }

// fmtT formats a sample time as m:ss (negative with a sign).
func fmtT(d time.Duration) string {
	sign := ""
	if d < 0 {
		sign = "-"
		d = -d
	}
	s := int(math.Round(d.Seconds()))
	return fmt.Sprintf("%s%d:%02d", sign, s/60, s%60)
}
