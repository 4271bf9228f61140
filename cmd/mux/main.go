// Command mux is a PostgreSQL connection multiplexer.
//
// Usage:
//
//	mux -config FILE         run
//	mux -check-config FILE   validate FILE and exit
//	mux -version             print the version and exit
//
// Signals: SIGTERM stops accepting connections and lets connected clients
// finish (up to the drain limit), SIGINT stops at once, SIGHUP is logged
// (reloading arrives with the admin console).
//
// Exit codes: 0 clean stop, 1 runtime failure (cannot listen, …), 2 bad
// usage or invalid configuration.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/proxy"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

// Exit codes scripts can rely on.
const (
	exitOK      = 0
	exitRuntime = 1
	exitUsage   = 2
)

// drainTimeout bounds how long SIGTERM waits for clients to leave.
const drainTimeout = 30 * time.Second

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mux", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "", "run with this TOML configuration `file`")
	checkPath := fs.String("check-config", "", "validate this configuration `file` and exit")
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	switch {
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
		fmt.Fprintln(stderr, "mux: -config FILE is required (see -h)")
		return exitUsage
	}
	cfg, err := config.Load(*cfgPath)
	if err != nil {
		fmt.Fprintf(stderr, "mux: %v\n", err)
		return exitUsage
	}
	log, err := newLogger(cfg, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mux: %v\n", err)
		return exitUsage
	}
	defer func() { _ = log.Sync() }()
	return serve(cfg, log)
}

func serve(cfg *config.Config, log *zap.Logger) int {
	p, err := proxy.New(cfg, log)
	if err != nil {
		log.Error("invalid configuration", zap.Error(err))
		return exitUsage
	}
	lns, err := p.Listen()
	if err != nil {
		log.Error("cannot listen", zap.Error(err))
		return exitRuntime
	}
	log.Info("mux started", zap.String("version", version), zap.String("pool_mode", cfg.PoolMode), zap.String("auth_type", cfg.AuthType))

	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := p.Serve(ln); err != nil {
				log.Error("serve failed", zap.Error(err))
			}
		}()
	}

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP)
	signal.Ignore(syscall.SIGPIPE)
	for sig := range sigs {
		switch sig {
		case syscall.SIGHUP:
			log.Warn("SIGHUP received: configuration reload is not supported yet; restart mux to apply changes")
			continue
		case syscall.SIGTERM:
			log.Info("SIGTERM: draining", zap.Duration("timeout", drainTimeout))
			ctx, cancel := context.WithTimeout(context.Background(), drainTimeout)
			go func() {
				// A second signal ends the drain.
				<-sigs
				cancel()
			}()
			err := p.Shutdown(ctx)
			cancel()
			wg.Wait()
			if err != nil && !errors.Is(err, context.Canceled) {
				log.Info("drain timed out: remaining clients disconnected")
			}
		case syscall.SIGINT:
			log.Info("SIGINT: stopping now")
			ctx, cancel := context.WithCancel(context.Background())
			cancel()
			_ = p.Shutdown(ctx)
			wg.Wait()
		}
		log.Info("mux stopped")
		return exitOK
	}
	return exitOK
}

// newLogger builds the root logger: console text or JSON, at the configured
// level. Components take named children of it.
func newLogger(cfg *config.Config, w io.Writer) (*zap.Logger, error) {
	level, err := zapcore.ParseLevel(cfg.LogLevel)
	if err != nil {
		return nil, fmt.Errorf("log_level: %w", err)
	}
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
	return zap.New(core).Named("mux"), nil
}
