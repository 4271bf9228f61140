//go:build unix

// Command soak runs mux under a long mixed workload and checks that it
// stays flat: goroutines and file descriptors return to their baseline once
// the clients have gone, and the resident set stops growing.
//
//	go run ./bench/soak                       # 2,000 clients for 10 minutes
//	go run ./bench/soak -clients 200 -duration 1m
//
// It starts a throwaway Postgres (internal/pgtest), fills it with
// pgbench -i, builds mux and runs it as a separate process, drives clients
// through it, samples the mux process every -interval, and writes the
// samples and the verdicts to -out (docs/SOAK.md). The exit status is 1 when a
// verdict fails, 2 for bad usage, 3 when the run could not be carried out.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

// options are the command-line settings.
type options struct {
	clients        int
	duration       time.Duration
	interval       time.Duration
	out            string
	think          time.Duration
	connectConc    int
	settle         time.Duration
	window         time.Duration
	rssLimitPct    float64
	goroutineSlack int
	fdSlack        int
	scale          int
	poolSize       int
	maxClientConn  int
}

func main() {
	var o options
	flag.IntVar(&o.clients, "clients", 2000, "client connections through mux")
	flag.DurationVar(&o.duration, "duration", 10*time.Minute, "how long the clients run once all are connected")
	flag.DurationVar(&o.interval, "interval", 10*time.Second, "time between samples")
	flag.StringVar(&o.out, "out", "", "report `file` (default docs/SOAK.md in the module)")
	flag.DurationVar(&o.think, "think", 700*time.Millisecond, "mean think time between a client's transactions (uniform in [0.5, 1.5] of it)")
	flag.IntVar(&o.connectConc, "connect-concurrency", 50, "logins in flight at once while the clients connect")
	flag.DurationVar(&o.settle, "settle", 10*time.Second, "wait after the clients disconnect before the final sample")
	flag.DurationVar(&o.window, "rss-window", 5*time.Minute, "RSS growth is judged over the last this much of the run (the whole run if shorter)")
	flag.Float64Var(&o.rssLimitPct, "rss-limit", 2, "largest RSS growth over the window that passes, in percent")
	flag.IntVar(&o.goroutineSlack, "goroutine-slack", 10, "goroutines above the baseline still counted as back to it")
	flag.IntVar(&o.fdSlack, "fd-slack", 10, "file descriptors above the baseline still counted as back to it")
	flag.IntVar(&o.scale, "scale", 5, "pgbench -i scale factor")
	flag.Parse()
	o.poolSize = 20
	o.maxClientConn = 5000
	if flag.NArg() != 0 || o.clients < 1 || o.duration <= 0 || o.interval <= 0 ||
		o.interval > o.duration || o.connectConc < 1 || o.think <= 0 || o.scale < 1 ||
		o.clients > o.maxClientConn {
		fmt.Fprintf(os.Stderr, "usage: soak [-clients N (1..%d)] [-duration D] [-interval D (<= duration)] [-out FILE] ...\n", o.maxClientConn)
		flag.PrintDefaults()
		os.Exit(2)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := run(ctx, o, commandLine())
	if err != nil {
		logf("soak run failed: %v", err)
		os.Exit(3)
	}
	if !r.pass() {
		logf("FAIL: a verdict failed; see %s", r.o.out)
		os.Exit(1)
	}
	logf("PASS; report in %s", r.o.out)
}

// commandLine is how this run was invoked, for the report.
func commandLine() string {
	args := []string{"go", "run", "./bench/soak"}
	for _, a := range os.Args[1:] {
		if strings.ContainsAny(a, " \t'\"") {
			a = "'" + strings.ReplaceAll(a, "'", `'\''`) + "'"
		}
		args = append(args, a)
	}
	return strings.Join(args, " ")
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}
