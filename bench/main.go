//go:build unix

// Command bench compares mux with PgBouncer and with direct connections to
// Postgres, side by side on one machine, and writes the results to
// docs/BENCHMARKS.md in the repository.
//
// Usage, from anywhere in the repository:
//
//	go run ./bench                # the full run, under 10 minutes on 2 cores
//	go run ./bench -T 3 -rounds 1 # a quick smoke run
//	go run ./bench -only S-50,S-1000 -mux-workers 1,2 # mux's workers against PgBouncer x2
//
// It starts a throwaway Postgres (internal/pgtest), installs PgBouncer with
// apt-get if it is missing, builds mux from this checkout, and runs every
// scenario against each system in interleaved rounds: a fresh proxy process
// for every run, so that each run's CPU and memory are its own. See
// README.md ("Benchmarks") for what is measured and how.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/muxpg/mux/bench/internal/progress"
	"github.com/muxpg/mux/internal/fdlimit"
)

// options are the command-line settings.
type options struct {
	duration     int    // pgbench -T, seconds
	rounds       int    // interleaved rounds
	scale        int    // pgbench -i -s
	idleClients  int    // clients of the idle scenario
	maxConns     int    // Postgres max_connections
	out          string // report path
	only         string // comma-separated scenario keys, "" for all
	keep         bool   // keep the temporary directory
	pgbouncerBin string
	// pgbouncerProcs is N of the PgBouncer xN target: N processes sharing
	// the port with so_reuseport, as operators run PgBouncer on many
	// cores. Below 2 there is no such target.
	pgbouncerProcs int
	// muxWorkers are the values of mux's workers key to run, one target
	// each; none by default, because mux rejects keys it does not know.
	muxWorkers []int
}

func main() {
	var o options
	flag.IntVar(&o.duration, "T", 6, "duration of each pgbench run, in `seconds`")
	flag.IntVar(&o.rounds, "rounds", 3, "interleaved rounds of every scenario")
	flag.IntVar(&o.scale, "scale", 10, "pgbench scale factor (pgbench -i -s)")
	flag.IntVar(&o.idleClients, "idle-clients", 10000, "client connections of the idle-clients scenario")
	flag.IntVar(&o.maxConns, "max-connections", 200, "Postgres max_connections")
	flag.StringVar(&o.out, "out", "", "write the report to this `file` (default docs/BENCHMARKS.md in the repository)")
	flag.StringVar(&o.only, "only", "", "run only these comma-separated scenario `keys` ("+scenarioKeys()+")")
	flag.BoolVar(&o.keep, "keep", false, "keep the temporary directory (configurations, logs)")
	flag.StringVar(&o.pgbouncerBin, "pgbouncer", "", "PgBouncer `binary` (default: found in PATH or /usr/sbin, installed with apt-get if missing)")
	flag.IntVar(&o.pgbouncerProcs, "pgbouncer-procs", 2, "`N` of the \"PgBouncer xN\" target in the -S scenarios with 50 and 1,000 clients: N PgBouncers on one port with so_reuseport, the pool split between them (0 or 1: no such target)")
	flag.Func("mux-workers", "also run mux with \"workers = N\" in its configuration, one target for each N in this comma-separated `list` (e.g. 0,2; 0 is the goroutine driver), in the -S scenarios with 50 and 1,000 clients (default: none; the key is not written)", func(s string) error {
		ws, err := parseWorkers(s)
		o.muxWorkers = ws
		return err
	})
	flag.Parse()
	if o.duration < 1 || o.rounds < 1 || o.scale < 1 || o.idleClients < 1 || o.pgbouncerProcs < 0 || flag.NArg() > 0 {
		flag.Usage()
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o); err != nil {
		fmt.Fprintf(os.Stderr, "bench: %v\n", err)
		os.Exit(1)
	}
}

// parseWorkers parses -mux-workers: distinct integers of at least 0 (0:
// mux's goroutine driver), separated by commas.
func parseWorkers(s string) ([]int, error) {
	var ws []int
	for _, f := range strings.Split(s, ",") {
		w, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || w < 0 {
			return nil, fmt.Errorf("%q is not a number of workers (0 or more)", f)
		}
		if slices.Contains(ws, w) {
			return nil, fmt.Errorf("%d given twice", w)
		}
		ws = append(ws, w)
	}
	return ws, nil
}

func run(ctx context.Context, o options) error {
	began := time.Now()
	load := loadAvg()
	root, err := repoRoot()
	if err != nil {
		return err
	}
	if o.out == "" {
		o.out = filepath.Join(root, "docs", "BENCHMARKS.md")
	}
	scens, err := selectScenarios(o.only)
	if err != nil {
		return err
	}
	if o.pgbouncerProcs > poolSize {
		return fmt.Errorf("-pgbouncer-procs %d: more processes than the %d server connections to split between them", o.pgbouncerProcs, poolSize)
	}
	targets := targetsOf(o)
	fdLimit, _ := fdlimit.Raise(65536)
	logf("open-files limit for this process and its children: %d", fdLimit)
	if fdLimit < uint64(o.idleClients)+1000 {
		return fmt.Errorf("the open-files limit %d is too low for %d idle clients; raise it (ulimit -n) or lower -idle-clients", fdLimit, o.idleClients)
	}
	logf("load average: %s (other work on this machine skews the results)", load)

	pgbouncerBin, err := ensurePgBouncer(ctx, o.pgbouncerBin)
	if err != nil {
		return err
	}

	tmp, err := os.MkdirTemp("/tmp", "muxbench")
	if err != nil {
		return err
	}
	if o.keep {
		logf("temporary directory (kept): %s", tmp)
	} else {
		defer os.RemoveAll(tmp)
	}
	// PgBouncer runs as the postgres OS user when we are root and must be
	// able to reach its directory.
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}

	logf("building mux and bench/idleclients")
	rev := revisionOf(ctx, root)
	muxBin := filepath.Join(tmp, "mux")
	idleBin := filepath.Join(tmp, "idleclients")
	if err := goBuild(ctx, root, muxBin, "./cmd/mux"); err != nil {
		return err
	}
	if err := goBuild(ctx, root, idleBin, "./bench/idleclients"); err != nil {
		return err
	}

	logf("starting Postgres (max_connections %d)", o.maxConns)
	env, err := newEnv(ctx, o, tmp, pgbouncerBin, muxBin, idleBin)
	if err != nil {
		return err
	}
	defer env.close()
	if err := env.checkMuxWorkers(ctx, o.muxWorkers); err != nil {
		return err
	}
	setupDone := time.Now()

	results := newResults()
	steps := 0
	for _, sc := range scens {
		steps += len(targetsIn(targets, sc))
	}
	meter := progress.NewSteps(steps * o.rounds)
	for r := 1; r <= o.rounds; r++ {
		for _, sc := range scens {
			for _, t := range runOrder(targetsIn(targets, sc), r) {
				if err := ctx.Err(); err != nil {
					return errors.New("interrupted")
				}
				res := env.runOne(ctx, sc, t, r)
				results.add(sc.key, t.key, res)
				logf("round %d  %-12s %-15s %s  %s", r, sc.key, t.key, res.summary(), meter.Done())
			}
		}
	}
	benchTime := time.Since(setupDone)

	info, err := env.describe(ctx, root, rev, fdLimit)
	if err != nil {
		return err
	}
	info.LoadStart = load
	info.SetupTime = setupDone.Sub(began)
	info.BenchTime = benchTime
	info.TotalTime = time.Since(began)
	report := renderReport(info, o, targets, scens, results)
	if err := os.WriteFile(o.out, []byte(report), 0o644); err != nil {
		return err
	}
	logf("wrote %s (total %s)", o.out, info.TotalTime.Round(time.Second))
	fmt.Print(summaryText(targets, scens, results))
	return nil
}

// runOrder is the order in which ts, direct first, run in round r: direct,
// then the proxies, reversed every other round so that no proxy always
// runs right after the same one (with one PgBouncer and one mux, they
// swap places every round).
func runOrder(ts []target, r int) []target {
	out := slices.Clone(ts)
	if r%2 == 0 && len(out) > 1 {
		slices.Reverse(out[1:])
	}
	return out
}

// repoRoot finds the directory of the go.mod of module github.com/muxpg/mux,
// starting from the working directory.
func repoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		b, err := os.ReadFile(filepath.Join(dir, "go.mod"))
		if err == nil && strings.Contains(string(b), "module github.com/muxpg/mux\n") {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("run this inside the mux repository (go.mod of github.com/muxpg/mux not found)")
		}
		dir = parent
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
