//go:build unix

// Command failover runs a read/write load through mux while the primary is
// killed and a replica promoted, and reports what the clients saw.
//
//	go run ./bench/failover                  # a throwaway pair and an in-process mux
//	go run ./bench/failover -app 'host=mux dbname=app ...' -ro 'host=mux dbname=app_ro ...' \
//	    -kill 'ssh db1 pg_ctl -D /data -m immediate stop' -promote 'ssh db2 pg_ctl -D /data promote'
//
// Writers insert rows with unique ids, one BEGIN/INSERT/COMMIT each,
// through the primary entry and keep every id whose COMMIT succeeded;
// readers run a read-only query through the replica entry. After -before
// the primary is killed and the replica promoted, the load goes on for
// -after, and the tool prints the writes before and after, the errors by
// SQLSTATE, the time from the end of the promotion to the first write that
// succeeded, and how many of the committed ids the new primary has. A
// commit is only safe across a crash with synchronous replication: without
// it the count shows what an asynchronous failover loses.
//
// With no -app, the tool starts a primary with a synchronous replica
// (internal/pgtest; PostgreSQL's server binaries must be installed) and a
// mux in this process with app and app_ro over both. The exit status is 1
// when a committed id is missing, a read failed or writes came back later
// than -max-recovery; 2 for bad usage; 3 when the run could not be carried
// out.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"go.uber.org/zap"
)

// options are the command-line settings.
type options struct {
	app, ro, verify string
	kill, promote   string
	clients         int
	readers         int
	think           time.Duration
	before, after   time.Duration
	maxRecovery     time.Duration
	verbose         bool
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stderr)
	if errors.Is(err, errUsage) {
		return 2
	}
	if err != nil { // -h
		return 0
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, cleanup, err := setup(ctx, o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "failover:", err)
		return 3
	}
	defer cleanup()
	r, err := runLoad(ctx, cfg)
	if r != nil {
		r.print(stdout)
	}
	if err != nil {
		fmt.Fprintln(stderr, "failover:", err)
		return 3
	}
	return verdict(r, o.maxRecovery, stderr)
}

// errUsage is a command line the tool cannot run; the flag package has
// already said why.
var errUsage = errors.New("bad usage")

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("failover", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&o.app, "app", "", "DSN of mux's read-write entry; empty: start a local pair and mux")
	fs.StringVar(&o.ro, "ro", "", "DSN of mux's read-only entry (standby, falling back to the primary); needed with -app")
	fs.StringVar(&o.verify, "verify", "", "DSN where the committed ids are counted at the end (default -app)")
	fs.StringVar(&o.kill, "kill", "", "shell command that kills the primary (with -app; empty: no failover)")
	fs.StringVar(&o.promote, "promote", "", "shell command that promotes the replica and returns once it takes writes")
	fs.IntVar(&o.clients, "clients", 50, "clients in all, writers and readers")
	fs.IntVar(&o.readers, "readers", 25, "of -clients, how many read through the read-only entry")
	fs.DurationVar(&o.think, "think", 5*time.Millisecond, "pause of each client between transactions")
	fs.DurationVar(&o.before, "before", 5*time.Second, "load before the kill (the whole run without a failover)")
	fs.DurationVar(&o.after, "after", 5*time.Second, "load after the promotion")
	fs.DurationVar(&o.maxRecovery, "max-recovery", 3*time.Second, "writes must succeed again this soon after the promotion")
	fs.BoolVar(&o.verbose, "v", false, "log mux's warnings (local mode)")
	if err := fs.Parse(args); errors.Is(err, flag.ErrHelp) {
		return o, err
	} else if err != nil {
		return o, errUsage
	}
	var bad string
	switch {
	case fs.NArg() > 0:
		bad = "unexpected arguments"
	case o.clients < 1 || o.readers < 0 || o.readers > o.clients:
		bad = "-readers must be between 0 and -clients, and -clients at least 1"
	case o.app != "" && o.ro == "":
		bad = "-app needs -ro"
	case o.app == "" && (o.ro != "" || o.verify != "" || o.kill != "" || o.promote != ""):
		bad = "-ro, -verify, -kill and -promote need -app"
	case (o.kill == "") != (o.promote == ""):
		bad = "-kill and -promote go together"
	}
	if bad != "" {
		fmt.Fprintln(stderr, "failover:", bad)
		return o, errUsage
	}
	return o, nil
}

// setup returns the load's configuration and what undoes it: the local
// pair and mux, or the given DSNs and commands.
func setup(ctx context.Context, o options, stderr io.Writer) (loadConfig, func(), error) {
	logf := func(format string, args ...any) {
		fmt.Fprintf(stderr, time.Now().Format("15:04:05.000 ")+format+"\n", args...)
	}
	var cfg loadConfig
	cleanup := func() {}
	if o.app == "" {
		log := zap.NewNop()
		if o.verbose {
			log = zap.Must(zap.NewDevelopment(zap.IncreaseLevel(zap.WarnLevel)))
		}
		logf("starting a primary, a synchronous replica and mux")
		l, err := startLocal(ctx, log.Named("mux"))
		if err != nil {
			return cfg, nil, err
		}
		cfg, cleanup = l.loadConfig(), l.stop
	} else {
		cfg = loadConfig{AppDSN: o.app, ReadDSN: o.ro, VerifyDSN: o.verify}
		if o.kill != "" {
			cfg.Kill, cfg.Promote = shell(ctx, o.kill, stderr), shell(ctx, o.promote, stderr)
		}
	}
	cfg.Clients, cfg.Readers, cfg.Think = o.clients, o.readers, o.think
	cfg.Before, cfg.After, cfg.Logf = o.before, o.after, logf
	return cfg, cleanup, nil
}

// shell runs a command with sh -c.
func shell(ctx context.Context, command string, stderr io.Writer) func() error {
	return func() error {
		cmd := exec.CommandContext(ctx, "sh", "-c", command)
		cmd.Stdout, cmd.Stderr = stderr, stderr
		return cmd.Run()
	}
}

// verdict is the exit status for a finished run.
func verdict(r *report, maxRecovery time.Duration, stderr io.Writer) int {
	var failed []string
	if r.Missing() > 0 {
		failed = append(failed, fmt.Sprintf("%d committed ids missing", r.Missing()))
	}
	if r.ReadErrors() > 0 {
		failed = append(failed, fmt.Sprintf("%d reads failed", r.ReadErrors()))
	}
	if r.Failover && (r.Recovery < 0 || r.Recovery > maxRecovery) {
		failed = append(failed, fmt.Sprintf("writes did not succeed within %v of the promotion", maxRecovery))
	}
	for _, f := range failed {
		fmt.Fprintln(stderr, "FAIL:", f)
	}
	if len(failed) > 0 {
		return 1
	}
	return 0
}
