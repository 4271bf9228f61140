//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/muxpg/mux/bench/internal/progress"
	"github.com/muxpg/mux/internal/fdlimit"
)

// result is everything the report needs.
type result struct {
	o        options
	cmdline  string
	started  time.Time
	finished time.Time

	machine machineInfo
	commit  string
	dirty   bool
	goVer   string
	pgVer   string
	fdLimit string // of the mux process

	samples  []sample
	baseline sample
	after    sample

	rampTime    time.Duration
	stoppedOK   bool // every client finished within the timeout
	muxUp       bool // mux was running when the clients stopped
	kindTx      [nKinds]int64
	kindErrs    [nKinds]int64
	logins      int64
	notes       int64
	errList     []string
	muxWarnings []string // warn and error lines of mux's log
	verdicts    []verdict
}

type verdict struct {
	name   string
	ok     bool
	detail string
}

func (r *result) pass() bool {
	for _, v := range r.verdicts {
		if !v.ok {
			return false
		}
	}
	return len(r.verdicts) > 0
}

type machineInfo struct {
	nproc     int
	memTotal  int64
	cpu       string
	kernel    string
	loadStart string
	loadEnd   string
}

// run carries out the soak and writes the report. An error means the run
// could not be carried out (no report is written then).
func run(ctx context.Context, o options, cmdline string) (*result, error) {
	r := &result{o: o, cmdline: cmdline, started: time.Now(), goVer: runtime.Version()}
	r.machine = readMachine()
	root, err := moduleRoot(ctx)
	if err != nil {
		return nil, err
	}
	r.commit, r.dirty = gitCommit(ctx, root)
	if o.out == "" {
		o.out = filepath.Join(root, "docs", "SOAK.md")
		r.o.out = o.out
	}

	// This process holds a socket per client, and so does mux; both also
	// need some for everything else.
	need := uint64(o.clients + 512)
	want := need
	if w := uint64(o.maxClientConn + 1024); w > want {
		want = w
	}
	lim, err := fdlimit.Raise(want)
	if lim < need {
		return nil, fmt.Errorf("open-file limit %d is below the %d that %d clients need (raise the hard limit: ulimit -Hn, or run as root): %v",
			lim, need, o.clients, err)
	}

	tmp, err := os.MkdirTemp("", "muxsoak")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	e := &env{o: o, tmp: tmp}
	defer e.close()
	if err := e.startPostgres(ctx); err != nil {
		return nil, err
	}
	r.pgVer = e.pgVer
	if err := e.buildMux(ctx, root); err != nil {
		return nil, err
	}
	if err := e.startMux(ctx); err != nil {
		return nil, err
	}
	r.fdLimit = e.muxLimit
	logf("mux pid %d listening on 127.0.0.1:%d, metrics on :%d, open files %s", e.muxPID(), e.muxPort, e.httpPort, e.muxLimit)

	// Baseline: the pool warmed to its full size and back to idle, so
	// the baseline and the end both have the pool's servers open.
	if err := warmPool(ctx, e); err != nil {
		return nil, fmt.Errorf("warming the pool: %w", err)
	}
	if err := sleepCtx(ctx, o.settle); err != nil {
		return nil, err
	}
	s := newSampler(e)
	r.baseline = s.take("baseline")
	r.samples = append(r.samples, r.baseline)
	logSample(r.baseline, "")
	if r.baseline.problem != "" {
		return nil, fmt.Errorf("baseline sample: %s", r.baseline.problem)
	}

	// Ramp: every client logs in (connectConc at once) and starts work.
	w := newWorkload(o, e.dsn())
	s.w = w
	s.lastAt = time.Now()
	rampStart := time.Now()
	logf("starting %d clients: %s", o.clients, kindSummary(o.clients))
	w.start()
	stopClients := func() bool {
		ok := w.stopAll(2 * time.Minute)
		if !ok {
			logf("clients did not all stop within 2 minutes")
		}
		return ok
	}
	nextRamp := time.Now().Add(o.interval)
	for w.c.ready.Load() < int64(o.clients) {
		if err := sleepCtx(ctx, 200*time.Millisecond); err != nil {
			stopClients()
			return nil, err
		}
		if !e.muxRunning() {
			stopClients()
			return nil, fmt.Errorf("mux exited while the clients connected:\n%s", tailFile(e.muxLog, 2000))
		}
		if time.Since(rampStart) > 10*time.Minute {
			stopClients()
			return nil, fmt.Errorf("only %d of %d clients logged in within 10 minutes; errors: %s",
				w.c.ready.Load(), o.clients, strings.Join(w.c.errorList(), "; "))
		}
		if time.Now().After(nextRamp) {
			sm := s.take("ramp")
			sm.t = time.Since(rampStart)
			r.samples = append(r.samples, sm)
			logSample(sm, fmt.Sprintf("[ramp: %d/%d clients logged in; then %s of load]", w.c.ready.Load(), o.clients, o.duration))
			nextRamp = nextRamp.Add(o.interval)
		}
	}
	r.rampTime = time.Since(rampStart)
	logf("all %d clients logged in after %v; load for %v", o.clients, r.rampTime.Round(time.Millisecond), o.duration)

	// Load: a sample every interval.
	s.zero = time.Now()
	s.lastAt, s.lastTx, s.lastEr = s.zero, 0, 0
	s.lastTx, s.lastEr = w.c.totals()
	n := int(o.duration / o.interval)
	for i := 1; i <= n; i++ {
		at := s.zero.Add(time.Duration(i) * o.interval)
		if err := sleepCtx(ctx, time.Until(at)); err != nil {
			stopClients()
			return nil, err
		}
		sm := s.take("load")
		sm.t = time.Duration(i) * o.interval
		r.samples = append(r.samples, sm)
		logSample(sm, progress.Timed(time.Since(s.zero), o.duration, o.settle))
		if !e.muxRunning() {
			break
		}
	}
	if err := sleepCtx(ctx, time.Until(s.zero.Add(o.duration))); err != nil {
		stopClients()
		return nil, err
	}

	// Disconnect everyone, let mux settle, take the final sample.
	r.muxUp = e.muxRunning()
	logf("stopping the clients")
	r.stoppedOK = stopClients()
	if err := sleepCtx(ctx, o.settle); err != nil {
		return nil, err
	}
	if e.muxRunning() {
		r.after = s.take("after")
		r.after.t = time.Since(s.zero)
		logSample(r.after, "")
	} else {
		r.muxUp = false
		r.after = sample{phase: "after", problem: "mux is not running"}
	}
	r.samples = append(r.samples, r.after)

	for k := range nKinds {
		r.kindTx[k] = w.c.tx[k].Load()
		r.kindErrs[k] = w.c.errs[k].Load()
	}
	r.logins = w.c.logins.Load()
	r.notes = w.c.notifications.Load()
	r.errList = w.c.errorList()
	r.muxWarnings = warnLines(e.muxLog)
	r.machine.loadEnd = readLoadAvg()
	r.finished = time.Now()
	r.verdicts = judge(r)

	if err := os.WriteFile(o.out, []byte(report(r)), 0o644); err != nil {
		return nil, err
	}
	for _, v := range r.verdicts {
		mark := "PASS"
		if !v.ok {
			mark = "FAIL"
		}
		logf("%s %s: %s", mark, v.name, v.detail)
	}
	return r, nil
}

// warmPool makes mux open every server of the pool: poolSize clients each
// hold a transaction open until all have one, then commit and leave. One
// of them also LISTENs and UNLISTENs, so the listening connection mux keeps
// for LISTEN exists before the baseline as well.
func warmPool(ctx context.Context, e *env) error {
	n := e.o.poolSize
	conns := make([]*pgconn.PgConn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close(context.Background())
		}
	}()
	for i := 0; i < n; i++ {
		c, err := pgconn.Connect(ctx, e.dsn())
		if err != nil {
			return err
		}
		conns = append(conns, c)
	}
	var wg sync.WaitGroup
	errs := make([]error, n)
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = c.Exec(ctx, "BEGIN; SELECT 1").ReadAll()
		}()
	}
	wg.Wait()
	for i, c := range conns {
		if errs[i] == nil {
			_, errs[i] = c.Exec(ctx, "COMMIT").ReadAll()
		}
	}
	if _, err := conns[0].Exec(ctx, "LISTEN soak_warmup").ReadAll(); err != nil {
		return err
	}
	if _, err := conns[0].Exec(ctx, "UNLISTEN soak_warmup").ReadAll(); err != nil {
		return err
	}
	return errors.Join(errs...)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// logSample logs one sample, with the run's progress when known.
func logSample(s sample, where string) {
	msg := fmt.Sprintf("%-8s t=%-6s open=%-5d tps=%-7.0f errs=%-4d rss=%.1fMiB fds=%d goroutines=%d heap=%.1fMiB mux_clients=%d parked=%d mux_servers=%d",
		s.phase, fmtT(s.t), s.open, s.tps, s.errs, mib(s.rss), s.fds, s.goroutines, mib(s.heapInuse), s.muxClients, s.muxParked, s.muxServers)
	if s.problem != "" {
		msg += " PROBLEM: " + s.problem
	}
	if where != "" {
		msg += "  " + where
	}
	logf("%s", msg)
}

func gitCommit(ctx context.Context, root string) (string, bool) {
	cmd := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD")
	cmd.Dir = root
	out, err := cmd.Output()
	if err != nil {
		return "unknown", false
	}
	st := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no")
	st.Dir = root
	so, err := st.Output()
	return strings.TrimSpace(string(out)), err == nil && len(strings.TrimSpace(string(so))) > 0
}

func readMachine() machineInfo {
	m := machineInfo{nproc: runtime.NumCPU(), loadStart: readLoadAvg()}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "MemTotal:") {
				var kb int64
				if _, err := fmt.Sscanf(strings.TrimPrefix(line, "MemTotal:"), "%d", &kb); err == nil {
					m.memTotal = kb * 1024
				}
			}
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpu = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	return m
}

func readLoadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// warnLines returns the lines of mux's log at level warn or above (text
// and JSON formats), at most 20, plus a count of the rest.
func warnLines(path string) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return []string{"(could not read the mux log: " + err.Error() + ")"}
	}
	var out []string
	extra := 0
	for _, line := range strings.Split(string(b), "\n") {
		l := strings.ToLower(line)
		if !(strings.Contains(l, "\twarn\t") || strings.Contains(l, "\terror\t") ||
			strings.Contains(l, " warn ") || strings.Contains(l, " error ") ||
			strings.Contains(l, `"level":"warn"`) || strings.Contains(l, `"level":"error"`) ||
			strings.Contains(l, "panic") || strings.Contains(l, "fatal")) {
			continue
		}
		if len(out) < 20 {
			if len(line) > 300 {
				line = line[:300] + "…"
			}
			out = append(out, line)
		} else {
			extra++
		}
	}
	if extra > 0 {
		out = append(out, fmt.Sprintf("(and %d more)", extra))
	}
	return out
}
