//go:build unix

package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/muxpg/mux/bench/internal/proc"
	"github.com/muxpg/mux/bench/internal/stats"
)

// runOne runs scenario sc against target t once.
func (e *env) runOne(ctx context.Context, sc scenario, t target, round int) *runResult {
	res := newRunResult()
	clients := sc.clients
	if sc.kind == kindIdle {
		clients = e.o.idleClients
	}
	if t.kind == kindDirect && clients+5 > e.o.maxConns {
		res.skipped = fmt.Sprintf("%s clients exceed max_connections (%d)", fmtInt(float64(clients)), e.o.maxConns)
		return res
	}
	port := e.cluster.Port
	var p *proxy
	if t.kind != kindDirect {
		var err error
		p, err = e.startProxy(ctx, t, runSeq.next())
		if err != nil {
			res.err = err.Error()
			return res
		}
		defer p.stop()
		port = p.port
	}
	before := e.snapshot(p)
	var err error
	switch sc.kind {
	case kindPgbench:
		err = e.runPgbench(ctx, sc, port, p, res)
	case kindIdle:
		err = e.runIdle(ctx, port, p, res)
	}
	if err != nil && res.err == "" {
		res.err = err.Error()
	}
	res.otherPct = e.snapshot(p).otherLoad(before, res.clientCPU)
	if p != nil && res.err != "" {
		if tail := p.logTail(600); tail != "" {
			logf("%s log (end):\n%s", t.key, tail)
		}
	}
	return res
}

// snapshot is the CPU time used so far by the machine and by each part of
// the benchmark.
type snapshot struct {
	ok       bool
	machine  proc.Machine
	postgres time.Duration // the postmaster and its children
	proxy    time.Duration // all its processes
	self     time.Duration // this process
}

func (e *env) snapshot(p *proxy) snapshot {
	var s snapshot
	var err error
	if s.machine, err = proc.ReadMachine(); err != nil {
		return s
	}
	if s.postgres, err = proc.ReadTreeCPU(e.postmaster); err != nil {
		return s
	}
	if p != nil {
		if s.proxy, err = p.cpu(); err != nil {
			return s
		}
	}
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return s
	}
	s.self = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	s.ok = true
	return s
}

// otherLoad is the share of the machine's CPU capacity, in percent, that
// processes outside the benchmark used between before and s: all busy CPU
// time minus that of Postgres, the proxy, the client program (client) and
// this process. It is NaN if a snapshot failed.
func (s snapshot) otherLoad(before snapshot, client time.Duration) float64 {
	total := s.machine.Total - before.machine.Total
	if !s.ok || !before.ok || total <= 0 {
		return math.NaN()
	}
	other := (s.machine.Busy - before.machine.Busy) - (s.postgres - before.postgres) -
		(s.proxy - before.proxy) - (s.self - before.self) - client
	if other < 0 {
		other = 0
	}
	return 100 * float64(other) / float64(total)
}

// runSeq numbers proxy directories.
var runSeq counter

type counter struct{ n int }

func (c *counter) next() int { c.n++; return c.n }

var (
	reTx      = regexp.MustCompile(`(?m)^number of transactions actually processed: (\d+)`)
	reFailed  = regexp.MustCompile(`(?m)^number of failed transactions: (\d+)`)
	reTPS     = regexp.MustCompile(`(?m)^tps = ([0-9.]+) \(without initial connection time\)`)
	reAborted = regexp.MustCompile(`client \d+ (?:script \d+ )?aborted`)
	reError   = regexp.MustCompile(`(?m)^pgbench: error: (.*)$`)
)

// runPgbench runs pgbench -S and fills in res. Latency comes from pgbench's
// per-transaction log (-l): every successful transaction's time, from which
// the exact mean and 99th percentile are computed.
func (e *env) runPgbench(ctx context.Context, sc scenario, port int, p *proxy, res *runResult) error {
	logDir, err := os.MkdirTemp(e.tmp, "pgbench-log")
	if err != nil {
		return err
	}
	defer os.RemoveAll(logDir)
	jobs := 2
	if sc.clients < 2 {
		jobs = 1
	}
	args := []string{
		"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", benchUser,
		"-n", "-S", "-M", sc.mode,
		"-c", strconv.Itoa(sc.clients), "-j", strconv.Itoa(jobs),
		"-T", strconv.Itoa(e.runSeconds(sc)),
		"-l", "--log-prefix", filepath.Join(logDir, "tx"),
		benchDB,
	}
	cctx, cancel := context.WithTimeout(ctx, time.Duration(e.runSeconds(sc))*time.Second+2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, e.pgbench, args...)
	cmd.Env = clientEnv()
	cmd.Dir = logDir
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr

	var cpu0 []time.Duration
	if p != nil {
		if cpu0, err = p.cpus(); err != nil {
			return err
		}
	}
	runErr := cmd.Run()
	if cmd.ProcessState != nil {
		res.clientCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	if p != nil {
		cpu1, err := p.cpus()
		if err != nil {
			return fmt.Errorf("%s is gone after pgbench: %v", p.name, err)
		}
		peak, err := p.peakRSS()
		if err != nil {
			return err
		}
		res.rssPeak = float64(peak)
		// The proxy's CPU is that of all its processes together.
		var used time.Duration
		for i := range cpu1 {
			used += cpu1[i] - cpu0[i]
		}
		if len(cpu1) > 1 {
			res.procCPU = make([]time.Duration, len(cpu1))
			for i := range cpu1 {
				res.procCPU[i] = cpu1[i] - cpu0[i]
			}
		}
		defer func() {
			if res.tx > 0 && !res.invalid {
				res.cpuPer1k = float64(used) / float64(time.Millisecond) * 1000 / res.tx
			}
		}()
	}
	if runErr != nil {
		var ee *exec.ExitError
		if errors.As(runErr, &ee) {
			res.exitStatus = ee.ExitCode()
		} else {
			return fmt.Errorf("pgbench: %v", runErr)
		}
	}

	out := stdout.String()
	errOut := stderr.String()
	if m := reTPS.FindStringSubmatch(out); m != nil {
		res.tps, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := reFailed.FindStringSubmatch(out); m != nil {
		res.failedTx, _ = strconv.ParseFloat(m[1], 64)
	} else {
		res.failedTx = 0
	}
	res.aborted = float64(len(reAborted.FindAllString(errOut, -1)))
	res.failures = res.failedTx + res.aborted

	lat, err := readTxLog(logDir)
	if err != nil {
		return err
	}
	sort.Float64s(lat)
	if len(lat) > 0 {
		res.latAvgMs = stats.Mean(lat)
		res.latP99Ms = stats.Percentile(lat, 99)
	}
	res.tx = float64(len(lat))
	if m := reTx.FindStringSubmatch(out); m != nil {
		res.tx, _ = strconv.ParseFloat(m[1], 64)
	}
	if res.exitStatus != 0 || res.aborted > 0 {
		msg := fmt.Sprintf("pgbench exit status %d, %.0f of %d clients aborted", res.exitStatus, res.aborted, sc.clients)
		if m := reError.FindStringSubmatch(errOut); m != nil {
			msg += "; first error: " + m[1]
		}
		res.err = msg
		// What the clients that were left measured says nothing about
		// the scenario: show only the failures.
		res.invalid = true
		res.tps, res.latAvgMs, res.latP99Ms = math.NaN(), math.NaN(), math.NaN()
	}
	if res.tx == 0 && res.err == "" {
		res.err = fmt.Sprintf("no transaction completed in pgbench's -T %d s: logging in %d clients took all of it (a busy machine?)",
			e.runSeconds(sc), sc.clients)
		res.tps = math.NaN()
	}
	if math.IsNaN(res.tps) && res.err == "" {
		res.err = "no tps in pgbench's output: " + tailString(out+errOut, 300)
	}
	return nil
}

// runSeconds is pgbench's -T for sc: -T plus one second per 100 clients,
// because pgbench's clock starts before its clients have logged in (1,000
// SCRAM log-ins take pgbench several seconds on 2 busy cores).
func (e *env) runSeconds(sc scenario) int {
	return e.o.duration + sc.clients/100
}

// readTxLog reads pgbench's per-transaction log files in dir and returns
// the latencies of the successful transactions, in milliseconds. A line is
// "client_id transaction_no time script_no time_epoch time_us [...]" with
// time in microseconds, or a word such as "failed" for failed ones.
func readTxLog(dir string) ([]float64, error) {
	files, err := filepath.Glob(filepath.Join(dir, "tx.*"))
	if err != nil {
		return nil, err
	}
	var lat []float64
	for _, f := range files {
		fh, err := os.Open(f)
		if err != nil {
			return nil, err
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 3 {
				continue
			}
			us, err := strconv.ParseInt(fields[2], 10, 64)
			if err != nil {
				continue
			}
			lat = append(lat, float64(us)/1000)
		}
		err = sc.Err()
		fh.Close()
		if err != nil {
			return nil, err
		}
	}
	return lat, nil
}

// runIdle runs bench/idleclients against the proxy.
func (e *env) runIdle(ctx context.Context, port int, p *proxy, res *runResult) error {
	if p == nil || len(p.procs) > 1 {
		return errors.New("the idle scenario needs a proxy of one process")
	}
	cctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(cctx, e.idleBin,
		"-dsn", dsn(port), "-pid", strconv.Itoa(p.pid()),
		"-n", strconv.Itoa(e.o.idleClients), "-rounds", "3", "-json")
	var stdout, stderr bytes.Buffer
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	runErr := cmd.Run()
	if cmd.ProcessState != nil {
		res.clientCPU = cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime()
	}
	var ir idleResult
	if err := json.Unmarshal(stdout.Bytes(), &ir); err != nil {
		return fmt.Errorf("idleclients: %v %s", runErr, tailString(stderr.String(), 500))
	}
	if peak, err := p.peakRSS(); err == nil {
		res.rssPeak = float64(peak)
	}
	res.idle = &ir
	res.failures = float64(ir.ConnectFailures + ir.QueryFailures)
	if ir.QueryOK > 0 {
		res.cpuPer1k = ir.ProxyCPUSeconds * 1e6 / float64(ir.QueryOK)
		res.latAvgMs = ir.LatencyAvgMs
		res.latP99Ms = ir.LatencyP99Ms
	}
	if len(ir.Errors) > 0 {
		res.err = strings.Join(ir.Errors, "; ")
	}
	return nil
}
