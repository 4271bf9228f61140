package metrics

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.uber.org/zap"

	"github.com/muxpg/mux/config"
)

// Server is the HTTP endpoint at http_listen:
//
//   - /metrics: Prometheus metrics (Observer, Collector, the Go runtime and
//     the process) from a registry of its own.
//   - /healthz: 200 "ok" while the process runs.
//   - /readyz: 200 "ready" when mux is listening (SetListening), not
//     draining (SetDraining) and every configured database other than "*"
//     is reachable (see probe); 503 with the reasons otherwise.
//   - / and /status.json: the status page and its data (status.go), where
//     config.ServesStatusPage allows and src is a StatusSource; a
//     goroutine then samples the pools' totals into a History each second.
//
// Create it with NewServer, install Observer on the proxy, Start it (or
// StartWhenFree) and Shutdown it. Its methods are safe for concurrent use.
type Server struct {
	log     *zap.Logger
	addr    string
	reg     *prometheus.Registry
	obs     *Observer
	targets []*target
	routed  []string    // routed entries (config.Database.Routed), sorted
	hosts   HostSource  // nil if src is not one
	status  *statusPage // nil if the status page is not served

	// Probe settings; tests shorten them.
	interval, timeout time.Duration
	failures          int

	listening, draining atomic.Bool

	srv      *http.Server
	ln       atomic.Pointer[net.Listener] // set once listening
	ctx      context.Context              // canceled by Shutdown: ends the probes and retries
	cancel   context.CancelFunc
	stopOnce sync.Once
	stopErr  error
	wg       sync.WaitGroup
}

// NewServer builds the endpoint for cfg.HTTPListen, reporting the pools of
// src (the proxy).
func NewServer(cfg *config.Config, src PoolSource, log *zap.Logger) *Server {
	s := &Server{
		log:      log.Named("http"),
		addr:     cfg.HTTPListen,
		reg:      prometheus.NewRegistry(),
		targets:  targets(cfg),
		routed:   routedNames(cfg),
		interval: probeInterval,
		timeout:  probeTimeout,
		failures: probeFailures,
	}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	s.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		NewCollector(src),
	)
	if hs, ok := src.(HostSource); ok {
		s.hosts = hs
		s.reg.MustRegister(NewHostCollector(hs))
	}
	s.obs = NewObserver(s.reg)

	errLog, _ := zap.NewStdLogAt(s.log, zap.WarnLevel)
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{
		ErrorLog:      errLog,
		ErrorHandling: promhttp.ContinueOnError,
		// Bounds concurrent scrapes; each one walks every pool.
		MaxRequestsInFlight: 4,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeText(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", s.serveReady)
	s.routeStatus(mux, cfg, src)
	s.srv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          errLog,
	}
	return s
}

// Observer returns the proxy.Observer whose metrics s serves.
func (s *Server) Observer() *Observer { return s.obs }

// Start listens on the configured address, then serves and probes in the
// background until Shutdown.
func (s *Server) Start() error {
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		return fmt.Errorf("http_listen: %w", err)
	}
	s.bound(ln)
	s.startProbes()
	s.startHistory()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		s.serve(ln)
	}()
	return nil
}

// StartWhenFree is Start for a mux that took its listening sockets over
// from a running one: that one holds the address until it has handed
// over, so while the address is in use StartWhenFree keeps trying, in the
// background, every retryInterval.
func (s *Server) StartWhenFree() {
	s.startProbes()
	s.startHistory()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		logged := false
		for {
			ln, err := net.Listen("tcp", s.addr)
			if err == nil {
				s.bound(ln)
				s.serve(ln)
				return
			}
			if !errors.Is(err, syscall.EADDRINUSE) {
				s.log.Error("cannot listen: no HTTP endpoint", zap.Error(err))
				return
			}
			if !logged {
				s.log.Info("http_listen in use, by the mux handing over: retrying", zap.String("listen", s.addr))
				logged = true
			}
			select {
			case <-s.ctx.Done():
				return
			case <-time.After(retryInterval):
			}
		}
	}()
}

// retryInterval is StartWhenFree's pause between attempts to listen.
const retryInterval = 100 * time.Millisecond

func (s *Server) startProbes() {
	for _, t := range s.targets {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.probeLoop(t)
		}()
	}
}

func (s *Server) bound(ln net.Listener) {
	s.ln.Store(&ln)
	s.log.Info("listening", zap.Stringer("listen", ln.Addr()))
	if s.status != nil {
		s.log.Info("status page", zap.String("url", "http://"+ln.Addr().String()+"/"))
	}
}

// serve serves HTTP on ln until Shutdown.
func (s *Server) serve(ln net.Listener) {
	// After Shutdown, Serve closes ln and returns at once.
	if err := s.srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		s.log.Error("serve failed", zap.Error(err))
	}
}

// Addr returns the address s listens on, or nil before it does.
func (s *Server) Addr() net.Addr {
	if ln := s.ln.Load(); ln != nil {
		return (*ln).Addr()
	}
	return nil
}

// SetListening records whether mux accepts client connections.
func (s *Server) SetListening(v bool) { s.listening.Store(v) }

// SetDraining records whether mux is shutting down: /readyz then fails so
// that load balancers stop sending new clients.
func (s *Server) SetDraining(v bool) { s.draining.Store(v) }

// Shutdown stops the probes and the HTTP server, letting requests in
// flight finish until ctx ends. Calls after the first return its result.
func (s *Server) Shutdown(ctx context.Context) error {
	s.stopOnce.Do(func() {
		s.cancel()
		if s.stopErr = s.srv.Shutdown(ctx); s.stopErr != nil {
			_ = s.srv.Close()
		}
		s.wg.Wait()
	})
	return s.stopErr
}

// probeLoop probes t every interval until Shutdown, the first time at once.
func (s *Server) probeLoop(t *target) {
	log := s.log.With(zap.Strings("databases", t.databases), zap.Strings("host_of", t.anyOf), zap.String("address", t.address))
	tick := time.NewTicker(s.interval)
	defer tick.Stop()
	for {
		ctx, cancel := context.WithTimeout(s.ctx, s.timeout)
		now := time.Now()
		err := probe(ctx, t.network, t.address)
		cancel()
		if s.ctx.Err() != nil {
			return
		}
		switch from, to := t.record(err, s.failures, now); {
		case to == stateDown && from != stateDown:
			log.Warn("database unreachable: not ready", zap.Int("failed_probes", s.failures), zap.Error(err))
		case to == stateUp && from == stateDown:
			log.Info("database reachable again")
		case to == stateUp && from == stateUnknown:
			log.Debug("database reachable")
		}
		select {
		case <-s.ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// ready reports whether mux is ready for new clients, and if not why.
func (s *Server) ready() (bool, []string) {
	var problems []string
	if !s.listening.Load() {
		problems = append(problems, "not listening")
	}
	if s.draining.Load() {
		problems = append(problems, "draining")
	}
	for _, t := range s.targets {
		if p := t.problem(); p != "" {
			problems = append(problems, p)
		}
	}
	rp, _ := s.routedProblems()
	problems = append(problems, rp...)
	return len(problems) == 0, problems
}

func (s *Server) serveReady(w http.ResponseWriter, _ *http.Request) {
	if ok, problems := s.ready(); !ok {
		writeText(w, http.StatusServiceUnavailable, "not ready: "+strings.Join(problems, "\nnot ready: "))
		return
	}
	if _, degraded := s.routedProblems(); len(degraded) > 0 {
		writeText(w, http.StatusOK, "ready\ndegraded: "+strings.Join(degraded, "\ndegraded: "))
		return
	}
	writeText(w, http.StatusOK, "ready")
}

func writeText(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body + "\n"))
}
