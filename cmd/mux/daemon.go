package main

import (
	"context"
	"errors"
	"net"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

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

	handedOver chan *handover.Successor // a successor took the listeners
	stop       chan proxy.DrainMode     // a request to drain and exit (admin SHUTDOWN)

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
	d.handedOver = make(chan *handover.Successor, 1)
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

	lns, pred, err := d.listeners(cfg)
	if err != nil {
		d.log.Error("cannot listen", zap.Error(err))
		return exitRuntime
	}
	if err := d.startHTTP(cfg, pred != nil); err != nil {
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
	if pred != nil {
		d.takeClients(pred)
	}
	if path := cfg.HandoverSocket; path != "" {
		offer := handover.Offering{Clients: true}
		if stop := d.serveCancels(path); stop != nil {
			defer stop()
			offer.CancelAddr = proxy.CancelSocketPath(path)
		}
		stopOffer, err := handover.Offer(path, lns, offer, func(s *handover.Successor) { d.handedOver <- s })
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
// offers them (pred, to confirm once they are served), else opens them.
func (d *daemon) listeners(cfg *config.Config) (lns []net.Listener, pred *handover.Predecessor, err error) {
	if path := cfg.HandoverSocket; path != "" {
		pred, err := handover.Take(path)
		if err == nil {
			d.log.Info("took the listening sockets over from the running mux", zap.String("handover_socket", path))
			return pred.Listeners, pred, nil
		}
		if !errors.Is(err, handover.ErrNoPredecessor) {
			return nil, nil, err
		}
	}
	lns, err = d.p.Listen()
	return lns, nil, err
}

// takeClients confirms the hand-over (the predecessor then stops
// accepting) and takes over its idle clients.
func (d *daemon) takeClients(pred *handover.Predecessor) {
	// Every client taken is a descriptor: take no more than fit, keeping
	// room for new logins and the pools' servers.
	limit := 0
	if room, ok := fdlimit.Room(handoverFDReserve); ok {
		limit = int(room)
		if room == 0 {
			limit = -1 // no room: take the listeners only
			d.log.Warn("no open-file room to take the idle clients over: they stay with the old process (raise ulimit -n)")
		}
	}
	if err := pred.Confirm(true, limit); err != nil {
		d.log.Warn("confirming the hand-over failed", zap.Error(err))
		return
	}
	d.p.SetPredecessor(pred.CancelAddr)
	if !pred.Clients {
		return
	}
	// The predecessor sends its idle clients at once, and each busy one
	// when it has become idle, until it has no more.
	go func() {
		start := time.Now()
		n, err := pred.ReceiveClients(d.p.AdoptClient)
		if err != nil {
			d.log.Warn("taking the idle clients over failed", zap.Int("clients", n), zap.Error(err))
		}
		d.log.Info("took the idle clients over from the running mux", zap.Int("clients", n),
			zap.Duration("took", time.Since(start).Round(time.Millisecond)))
	}()
}

// handoverFDReserve are descriptors a new process keeps free when it takes
// clients over: for logins, servers and its own files.
const handoverFDReserve = 256

// serveCancels listens where a successor forwards cancel requests for the
// clients this process keeps after a hand-over; stop closes it.
func (d *daemon) serveCancels(handoverPath string) (stop func()) {
	path := proxy.CancelSocketPath(handoverPath)
	_ = os.Remove(path)
	ln, err := net.Listen("unix", path)
	if err != nil {
		d.log.Warn("cancel requests will not reach this process after a hand-over", zap.Error(err))
		return nil
	}
	_ = os.Chmod(path, 0o600)
	go d.p.ServeCancels(ln)
	return func() { ln.Close() }
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
		case succ := <-d.handedOver:
			d.log.Info("listeners handed over to a new mux: draining")
			d.stopHTTP() // the new mux listens on http_listen once it is free
			d.p.StopAccepting()
			d.handOverClients(succ, sigs)
		}
		d.wg.Wait()
		d.log.Info("mux stopped", zap.Int64("clients_served", d.p.Served()))
		return exitOK
	}
}

// handoverRound is how often clients that were busy are looked at again
// during a hand-over: each one that has become idle moves then.
const handoverRound = 200 * time.Millisecond

// handOverClients moves the idle clients to the successor, if it asked,
// and then, round after round, each client that becomes idle, until none
// that could move is left, shutdown_timeout has passed or a signal comes;
// then it drains the rest (until what is left of shutdown_timeout).
func (d *daemon) handOverClients(succ *handover.Successor, sigs <-chan os.Signal) {
	timeout := d.p.Config().ShutdownTimeout.D()
	start := time.Now()
	total := 0
	if succ.WantsClients {
		total = d.p.HandOverClients(succ)
		d.log.Info("idle clients handed over to the new mux", zap.Int("clients", total),
			zap.Duration("took", time.Since(start).Round(time.Millisecond)))
	}
	mode := proxy.WaitForClients
	var interrupted os.Signal
	for succ.WantsClients && interrupted == nil && d.p.Movable() > 0 && succ.Room() != 0 && succ.Heartbeat() == nil {
		if timeout > 0 && time.Since(start) >= timeout {
			break
		}
		select {
		case interrupted = <-sigs:
			d.log.Info("signal during the hand-over: no more clients move", zap.Stringer("signal", interrupted))
		case <-time.After(handoverRound):
			total += d.p.HandOverClients(succ)
		}
	}
	succ.Close()
	if succ.WantsClients {
		d.log.Info("hand-over of clients ended", zap.Int("clients", total), zap.Int("staying", d.p.NumClients()),
			zap.Duration("took", time.Since(start).Round(time.Millisecond)))
	}
	if timeout > 0 {
		timeout = max(timeout-time.Since(start), time.Millisecond)
	}
	switch interrupted {
	case syscall.SIGQUIT:
		timeout = time.Millisecond // stop now
	case syscall.SIGINT:
		mode = proxy.CloseBetweenTransactions
	}
	d.drainFor("hand-over", mode, sigs, timeout)
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
	d.drainFor(reason, mode, sigs, d.p.Config().ShutdownTimeout.D())
}

// drainFor is drain with timeout in place of shutdown_timeout.
func (d *daemon) drainFor(reason string, mode proxy.DrainMode, sigs <-chan os.Signal, timeout time.Duration) {
	d.setDraining()
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
