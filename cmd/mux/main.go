// Command mux is a PostgreSQL connection multiplexer.
//
// Usage:
//
//	mux demo [-listen ADDR]  a throwaway Postgres behind mux, to try it
//	mux import-pgbouncer pgbouncer.ini [userlist.txt] > mux.toml
//	mux -config FILE         run
//	mux -check-config FILE   validate FILE and exit
//	mux -version             print the version and exit
//
// Signals: SIGTERM drains (new connections get 57P03, connected clients
// finish, up to shutdown_timeout, then 57P01); SIGINT drains too, closing
// transaction- and statement-mode clients between transactions; SIGQUIT
// stops at once; SIGHUP reloads the configuration file; SIGUSR1 pauses
// every database (as the console's PAUSE) and SIGUSR2 resumes. With
// handover_socket set, a new mux started on the same configuration takes
// the listening sockets over and the old one drains and exits.
//
// Exit codes: 0 clean stop, 1 runtime failure (cannot listen, …), 2 bad
// usage or invalid configuration.
package main

import (
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"runtime/debug"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/pgbouncerconf"
)

// version is set at build time with -ldflags "-X main.version=…"; a
// plain go build or go run names the commit it was built from instead.
var version = buildVersion(debug.ReadBuildInfo())

// buildVersion describes a build without -X main.version: "dev", then the
// commit and its time from the Go build info, "+dirty" if the tree had
// changes.
func buildVersion(bi *debug.BuildInfo, ok bool) string {
	if !ok {
		return "dev"
	}
	var rev, at, dirty string
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.time":
			at = s.Value
		case "vcs.modified":
			if s.Value == "true" {
				dirty = "+dirty"
			}
		}
	}
	if rev == "" {
		return "dev"
	}
	return fmt.Sprintf("dev (commit %.12s%s, %s)", rev, dirty, at)
}

// Exit codes scripts can rely on.
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

// defaultGCPercent is mux's garbage collection target unless GOGC is set.
// The relay allocates nothing per message, so the heap grows with clients
// and logins rather than with traffic: collecting at 50% growth instead of
// Go's 100% keeps the memory each client costs down for little CPU.
const defaultGCPercent = 50

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && args[0] == "import-pgbouncer" {
		return importPgbouncer(args[1:], stdout, stderr)
	}
	if len(args) > 0 && args[0] == "demo" {
		return demo(args[1:], stdout, stderr)
	}
	fs := flag.NewFlagSet("mux", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "run with this TOML configuration `file`")
	checkPath := fs.String("check-config", "", "validate this configuration `file` and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	probeURL := fs.String("probe", "", "GET this `url` (e.g. http://127.0.0.1:9127/readyz) and exit 0 if it answers 200: a health check for images without curl")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	switch {
	case *probeURL != "":
		return probe(*probeURL, stderr)
	case *showVersion:
		fmt.Fprintf(stdout, "mux %s\n", version)
		return exitOK
	case *checkPath != "":
		if _, err := config.Load(*checkPath); err != nil {
			fmt.Fprintf(stderr, "mux: %v\n", err)
			return exitUsage
		}
		fmt.Fprintf(stdout, "mux: %s is valid\n", *checkPath)
		return exitOK
	case *cfgPath == "":
		fmt.Fprintln(stderr, "mux: -config FILE is required (see -h; to try mux: mux demo)")
		return exitUsage
	}
	snap, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "mux: %v\n", err)
		return exitUsage
	}
	log, level, err := newLogger(snap.Config, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mux: %v\n", err)
		return exitUsage
	}
	defer func() { _ = log.Sync() }()
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
	if w := snap.Config.Workers.N(); w > 0 && os.Getenv("GOMAXPROCS") == "" && w < runtime.GOMAXPROCS(0) {
		// The loops do the relaying: a P more than there are loops only
		// moves a loop from thread to thread when it sleeps and wakes
		// (docs/PERFORMANCE.md, "GOMAXPROCS with the loops").
		runtime.GOMAXPROCS(w)
		log.Info("GOMAXPROCS set to the number of event loops", zap.Int("gomaxprocs", w))
	}
	d := &daemon{path: *cfgPath, log: log, level: level}
	return d.run(snap)
}

// newLogger builds the root logger: console text or JSON, at the configured
// level. Components take named children of it.
func newLogger(cfg *config.Config, w io.Writer) (*zap.Logger, zap.AtomicLevel, error) {
	lvl, err := zapcore.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, zap.AtomicLevel{}, fmt.Errorf("log_level: %w", err)
	}
	level := zap.NewAtomicLevelAt(lvl)
	encCfg := zap.NewProductionEncoderConfig()
	encCfg.TimeKey = "ts"
	encCfg.EncodeTime = zapcore.ISO8601TimeEncoder
	var enc zapcore.Encoder
	if cfg.LogFormat == "json" {
		enc = zapcore.NewJSONEncoder(encCfg)
	} else {
		encCfg.EncodeLevel = zapcore.CapitalLevelEncoder
		enc = zapcore.NewConsoleEncoder(encCfg)
	}
	core := zapcore.NewCore(enc, zapcore.Lock(zapcore.AddSync(w)), level)
	return zap.New(core).Named("mux"), level, nil
}

// probe GETs url and reports whether it answered 200.
func probe(url string, stderr io.Writer) int {
	client := http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		fmt.Fprintf(stderr, "mux: probe: %v\n", err)
		return exitRuntime
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		fmt.Fprintf(stderr, "mux: probe: %s answered %s\n", url, resp.Status)
		return exitRuntime
	}
	return exitOK
}

// importPgbouncer converts pgbouncer.ini (and its auth_file, or the given
// userlist) to a mux configuration on stdout; what could not be carried
// over is listed on stderr (and as comments in the output).
func importPgbouncer(args []string, stdout, stderr io.Writer) int {
	if len(args) < 1 || len(args) > 2 {
		fmt.Fprintln(stderr, "usage: mux import-pgbouncer pgbouncer.ini [userlist.txt] > mux.toml")
		return exitUsage
	}
	authPath := ""
	if len(args) == 2 {
		authPath = args[1]
	}
	res, err := pgbouncerconf.Import(args[0], authPath)
	if err != nil {
		fmt.Fprintf(stderr, "mux: import-pgbouncer: %v\n", err)
		return exitUsage
	}
	if _, err := stdout.Write(res.TOML); err != nil {
		fmt.Fprintf(stderr, "mux: %v\n", err)
		return exitRuntime
	}
	for _, n := range res.Notes {
		fmt.Fprintf(stderr, "not carried over: %s\n", n)
	}
	return exitOK
}
