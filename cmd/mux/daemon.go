package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/fdlimit"
	"github.com/muxpg/mux/internal/handover"
	"github.com/muxpg/mux/metrics"
	"github.com/muxpg/mux/proxy"
)

// daemon is one mux process: its proxy, listeners and signal handling.
type daemon struct {
	path  string // configuration file, re-read on SIGHUP
	log   *zap.Logger
	level zap.AtomicLevel

	p  *proxy.Proxy
	wg sync.WaitGroup // Serve goroutines

	http *metrics.Server // nil when http_listen is ""

	handedOver chan struct{}        // closed when a successor took the listeners
	stop       chan proxy.DrainMode // a request to drain and exit (admin SHUTDOWN)

	started func() // if set, called once the listeners are served (mux demo)
}

func (d *daemon) run(snap *config.Snapshot) int {
	cfg := snap.Config
	p, err := proxy.New(snap, d.log)
	if err != nil {
		d.log.Error("invalid configuration", zap.Error(err))
		return exitUsage
	}
	d.p = p
	d.handedOver = make(chan struct{})
	d.stop = make(chan proxy.DrainMode, 1)
	// The admin console's RELOAD and SHUTDOWN.
	p.OnReload = d.reload
	p.OnShutdown = func(mode proxy.DrainMode) {
		select {
		case d.stop <- mode:
		default: // already stopping
		}
	}
	p.Version = version

	// Signals are caught before anything listens: a SIGTERM that arrives as
	// soon as /readyz answers (an orchestrator stopping a fresh replica)
	// must drain, not kill the process.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, append([]os.Signal{syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGHUP}, extraSignals...)...)
	signal.Ignore(syscall.SIGPIPE)
	defer signal.Stop(sigs)

	lns, confirm, err := d.listeners(cfg)
	if err != nil {
		d.log.Error("cannot listen", zap.Error(err))
		return exitRuntime
	}
	if err := d.startHTTP(cfg, confirm != nil); err != nil {
		d.log.Error("cannot listen", zap.Error(err))
		for _, ln := range lns {
			ln.Close()
		}
		return exitRuntime
	}
	defer d.stopHTTP()
	for _, ln := range lns {
		d.wg.Add(1)
		go func() {
			defer d.wg.Done()
			if err := p.Serve(ln); err != nil {
				d.log.Error("serve failed", zap.Error(err))
			}
		}()
	}
	d.setListening(true)
	if d.started != nil {
		d.started()
	}
	if confirm != nil {
		if err := confirm(); err != nil {
			d.log.Warn("confirming the hand-over failed", zap.Error(err))
		}
	}
	if path := cfg.HandoverSocket; path != "" {
		var once sync.Once
		stopOffer, err := handover.Offer(path, lns, func() { once.Do(func() { close(d.handedOver) }) })
		if err != nil {
			d.log.Warn("rolling restart unavailable", zap.Error(err))
		} else {
			defer stopOffer()
		}
	}
	d.checkFDLimit(cfg)
	d.log.Info("mux started", zap.String("version", version), zap.String("pool_mode", cfg.PoolMode), zap.String("auth_type", cfg.AuthType))
	return d.loop(sigs)
}

// listeners takes the listening sockets over from a running mux if one
// offers them, else opens them. confirm, when not nil, tells the
// predecessor that the sockets are being served.
func (d *daemon) listeners(cfg *config.Config) (lns []net.Listener, confirm func() error, err error) {
	if path := cfg.HandoverSocket; path != "" {
		lns, confirm, err := handover.Take(path)
		if err == nil {
			d.log.Info("took the listening sockets over from the running mux", zap.String("handover_socket", path))
			return lns, confirm, nil
		}
		if !errors.Is(err, handover.ErrNoPredecessor) {
			return nil, nil, err
		}
	}
	lns, err = d.p.Listen()
	return lns, nil, err
}

func (d *daemon) loop(sigs <-chan os.Signal) int {
	for {
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				d.reload()
				continue
			case sigPause, sigResume:
				d.pauseOrResume(sig)
				continue
			case syscall.SIGQUIT:
				d.log.Info("SIGQUIT: stopping now")
				ctx, cancel := context.WithCancel(context.Background())
				cancel()
				_ = d.p.Shutdown(ctx)
			case syscall.SIGINT:
				d.drain("SIGINT", proxy.CloseBetweenTransactions, sigs)
			case syscall.SIGTERM:
				d.drain("SIGTERM", proxy.WaitForClients, sigs)
			}
		case mode := <-d.stop:
			d.drain("admin console SHUTDOWN", mode, sigs)
		case <-d.handedOver:
			d.log.Info("listeners handed over to a new mux: draining")
			d.stopHTTP() // the new mux listens on http_listen once it is free
			d.p.StopAccepting()
			d.drain("hand-over", proxy.WaitForClients, sigs)
		}
		d.wg.Wait()
		d.log.Info("mux stopped", zap.Int64("clients_served", d.p.Served()))
		return exitOK
	}
}

// pauseOrResume is PgBouncer's SIGUSR1 (PAUSE: no client gets a server,
// servers close as they come back) and SIGUSR2 (RESUME).
func (d *daemon) pauseOrResume(sig os.Signal) {
	if sig == sigPause {
		d.log.Info("SIGUSR1: pausing every database")
		d.p.PauseAll()
		return
	}
	if err := d.p.ResumeAll(); err != nil {
		d.log.Info("SIGUSR2: nothing to resume", zap.Error(err))
		return
	}
	d.log.Info("SIGUSR2: resumed every database")
}

// drain lets connected clients finish, or closes them between
// transactions (mode), up to shutdown_timeout (a second signal cuts it
// short), then ends the rest.
func (d *daemon) drain(reason string, mode proxy.DrainMode, sigs <-chan os.Signal) {
	d.setDraining()
	timeout := d.p.Config().ShutdownTimeout.D()
	d.log.Info("draining", zap.String("reason", reason), zap.Bool("close_between_transactions", mode == proxy.CloseBetweenTransactions),
		zap.Duration("shutdown_timeout", timeout))
	ctx, cancel := context.WithCancel(context.Background())
	if timeout > 0 {
		ctx, cancel = context.WithTimeout(context.Background(), timeout)
	}
	defer cancel()
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	if err := d.p.Drain(ctx, mode); err != nil && !errors.Is(err, context.Canceled) {
		d.log.Info("shutdown_timeout passed: remaining clients disconnected")
	}
}

// reload re-reads the configuration file; an invalid one is refused and
// the running configuration kept.
func (d *daemon) reload() error {
	snap, err := config.Load(d.path)
	if err != nil {
		d.log.Error("reload refused: configuration is invalid; keeping the running one", zap.Error(err))
		return err
	}
	if err := d.p.Reload(snap); err != nil {
		d.log.Error("reload refused; keeping the running configuration", zap.Error(err))
		return err
	}
	if lvl, err := zapcore.ParseLevel(snap.Config.LogLevel); err == nil {
		d.level.SetLevel(lvl)
	}
	return nil
}

// checkFDLimit reports the open-file limit (Go raises the soft limit to the
// hard one at start) and warns when max_client_conn plus the pools cannot
// fit in it.
func (d *daemon) checkFDLimit(cfg *config.Config) {
	limit, _, err := fdlimit.Get()
	if err != nil {
		return
	}
	need := uint64(cfg.MaxClientConn) + 64
	for name, db := range cfg.Databases {
		size := db.PoolSize
		if size == 0 {
			size = cfg.DefaultPoolSize
		}
		if name == config.WildcardDatabase {
			size *= 4 // several databases may come through the wildcard
		}
		need += uint64(size)
	}
	if limit < need {
		d.log.Warn("open file limit is below what max_client_conn and the pools may need: raise it (ulimit -n, LimitNOFILE) or lower max_client_conn",
			zap.Uint64("limit", limit), zap.Uint64("needed", need))
		return
	}
	d.log.Info("open file limit", zap.Uint64("limit", limit), zap.Uint64("needed", need))
}
