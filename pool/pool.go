// Package pool keeps the server connections mux lends to clients: one Pool
// per (database, user), with FIFO waiters, size limits, lifetimes, health
// checks and reconnect back-off.
package pool

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/muxpg/mux/internal/rawio"
	"go.uber.org/zap"
)

// Back-off between failed connection attempts starts here and doubles up to
// Config.LoginRetry.
const firstBackoff = 50 * time.Millisecond

// Config sizes and times one pool.
type Config struct {
	Target         Target
	MaxSize        int           // most servers open or connecting
	MinSize        int           // servers kept open even when idle
	Lifetime       time.Duration // close a server this old when it is next idle; 0: never
	IdleTimeout    time.Duration // close a server idle this long; 0: never
	CheckDelay     time.Duration // run CheckQuery before reusing a server idle this long
	CheckQuery     string        // "" disables checks
	ConnectTimeout time.Duration // bound on dial plus login
	LoginRetry     time.Duration // cap on the back-off between failed attempts
	// Hosts, when set, chooses the host of each new server connection
	// (Target.Host and Port are then ignored); nil: Target's one host.
	Hosts *HostSet
	// ReadSplit, with Hosts, gives the pool a read sibling (reads.go)
	// whose servers go to replicas.
	ReadSplit bool
	// Limits count the pool's servers with other pools' (limit.go); each
	// must be the same *Limit for every pool it covers.
	Limits []*Limit
	// Reserve servers beyond MaxSize serve clients that waited
	// ReserveTimeout (limit.go); 0 or a zero timeout: none.
	Reserve        int
	ReserveTimeout time.Duration
	// RoundRobin lends the idle server released longest ago (FIFO)
	// instead of the one released last (LIFO); reuse.go.
	RoundRobin bool
	// ConnectQuery runs on each new server after login (reuse.go).
	ConnectQuery string
}

// ErrClosed is returned by Acquire on a closed pool.
var ErrClosed = errors.New("pool is closed")

// ErrWaitTimeout is returned when no server became free in time.
var ErrWaitTimeout = errors.New("timed out waiting for a server connection")

// Template is what a pool learnt from its first server: the ParameterStatus
// set clients get at login, and each setting's pg_settings.context by its
// lower-cased name.
type Template struct {
	Params   map[string]string
	Contexts map[string]string
	routeGen uint64 // the routing generation of the server it came from
}

// Stats is a snapshot of a pool's counters.
type Stats struct {
	Total, Idle, Waiting int
}

// Pool lends server connections for one (database, user). All methods are
// safe for concurrent use.
type Pool struct {
	cfg  Config
	log  *zap.Logger
	stop chan struct{}

	template *Template     // guarded by mu
	fetching chan struct{} // guarded by mu: closed when the template fetch under way ends; nil if none is

	mu       sync.Mutex // guards the fields below
	idle     []*Server  // LIFO: the most recently used server is the warmest
	waiters  waitQueue  // FIFO
	total    int        // servers open or being connected
	clientPW string     // the password the last LDAP client gave (SetClientPassword)
	closed   bool
	gen      uint64    // servers of an older generation are closed when released
	retryAt  time.Time // no new connection attempt before this
	backoff  time.Duration
	lastErr  error
	inflight map[*Server]struct{} // servers lent out or being checked

	// One timer ends the waits of every AcquireTimeout caller: armed for
	// the earliest deadline in the queue (timerAt, zero when not armed),
	// it expires the waiters that are due and re-arms for the next. A
	// waiter then blocks on its channel alone, with no timer of its own.
	waitTimer *time.Timer
	timerAt   time.Time
	// inOrder holds while the queue's deadlines grow from head to tail
	// (one query_wait_timeout for all): expiry then stops at the first
	// waiter not yet due instead of walking the whole queue. A shorter
	// timeout after a reload, or a retry queued again with its first
	// deadline, breaks it until the queue next empties.
	inOrder      bool
	lastDeadline time.Time
	// The reserve timer (limit.go) fires when the first waiter has
	// waited ReserveTimeout; reserveAt is when (zero: not armed).
	reserveTimer *time.Timer
	reserveAt    time.Time

	// loops, when set, picks the event loop that reads a new server.
	loops atomic.Pointer[func() Loop]

	// reads is the read sibling (ReadSplit; reads.go), nil without one.
	reads atomic.Pointer[Pool]
	// forReads is set, before the pool is used, on a read sibling: its
	// servers are routed for reads.
	forReads bool
}

// SetLoops makes the pool hand each new plain-TCP server to the loop that
// pick returns (nil: a read goroutine per server).
func (p *Pool) SetLoops(pick func() Loop) {
	if r := p.reads.Load(); r != nil {
		r.SetLoops(pick)
	}
	if pick == nil {
		p.loops.Store(nil)
		return
	}
	p.loops.Store(&pick)
}

// New creates a pool and starts its maintenance loop.
func New(cfg Config, log *zap.Logger) *Pool {
	p := makePool(cfg, log, false)
	p.syncReads(cfg)
	return p
}

// makePool creates a pool, or a read sibling (forReads), and starts its
// maintenance loop.
func makePool(cfg Config, log *zap.Logger, forReads bool) *Pool {
	p := &Pool{cfg: cfg, log: log, stop: make(chan struct{}), inflight: map[*Server]struct{}{}, forReads: forReads}
	p.syncLimits(nil, cfg.Limits)
	go p.maintain()
	return p
}

// Config returns the pool's configuration.
func (p *Pool) Config() Config {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg
}

// SetConfig changes sizes, times and target on a live pool (reload). Servers
// connected to a previous target are closed: idle ones now, lent ones when
// they come back. A larger pool serves waiters at once; a smaller one
// shrinks as servers are released.
func (p *Pool) SetConfig(cfg Config) {
	p.mu.Lock()
	moved := cfg.Target.Host != p.cfg.Target.Host || cfg.Target.Port != p.cfg.Target.Port ||
		cfg.Target.Database != p.cfg.Target.Database || cfg.Target.User != p.cfg.Target.User ||
		cfg.Target.Password != p.cfg.Target.Password && cfg.Target.User != p.cfg.Target.User ||
		cfg.Hosts != p.cfg.Hosts || cfg.ConnectQuery != p.cfg.ConnectQuery
	grow := cfg.MaxSize - p.cfg.MaxSize
	oldLimits := p.cfg.Limits
	if cfg.Target.ClientKey == nil && cfg.Target.User == p.cfg.Target.User && cfg.Target.Password == p.cfg.Target.Password {
		cfg.Target.ClientKey = p.cfg.Target.ClientKey // pass-through keys survive a reload
	}
	if cfg.Target.Password == "" && cfg.Target.User == p.cfg.Target.User {
		cfg.Target.Password = p.clientPW // so does an LDAP client's password
	}
	p.cfg = cfg
	var drop []*Server
	if moved {
		p.gen++
		drop = p.idle
		p.idle = nil
		for _, s := range drop {
			p.dropLocked(s)
		}
	}
	for ; grow > 0 && p.waiters.n > 0; grow-- {
		p.wakeLocked()
	}
	p.armReserveLocked()
	p.mu.Unlock()
	p.syncLimits(oldLimits, cfg.Limits)
	for _, s := range drop {
		s.close()
	}
	p.syncReads(cfg)
}

// SetClientKey records the SCRAM ClientKey a client proved, for logging in
// to Postgres by pass-through. A different key (the secret changed) closes
// servers made with the old one as they come back.
func (p *Pool) SetClientKey(key [32]byte) {
	if r := p.reads.Load(); r != nil {
		r.SetClientKey(key)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if k := p.cfg.Target.ClientKey; k != nil && *k == key {
		return
	}
	p.cfg.Target.ClientKey = &key
	p.backoff, p.retryAt = 0, time.Time{}
}

// UsesClientKey reports whether the pool logs in with a client's SCRAM
// key (SetClientKey): a process that never saw the key could not.
func (p *Pool) UsesClientKey() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cfg.Target.ClientKey != nil
}

// Reconnect closes every server once it is idle: idle ones now, lent ones
// when released (RECONNECT in the admin console).
func (p *Pool) Reconnect() {
	if r := p.reads.Load(); r != nil {
		r.Reconnect()
	}
	p.mu.Lock()
	p.gen++
	drop := p.idle
	p.idle = nil
	for _, s := range drop {
		p.dropLocked(s)
	}
	p.mu.Unlock()
	for _, s := range drop {
		s.close()
	}
}

// Stats returns current counts, the read sibling's included.
func (p *Pool) Stats() Stats {
	var st Stats
	if r := p.reads.Load(); r != nil {
		st = r.Stats()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return Stats{Total: st.Total + p.total, Idle: st.Idle + len(p.idle), Waiting: st.Waiting + p.waiters.n}
}

func (p *Pool) connect(ctx context.Context) (*Server, error) {
	cfg := p.Config()
	cctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	s, err := p.dialRouted(cctx, cfg, nil)
	if err != nil {
		p.log.Warn("connecting to server failed", zap.Error(err))
		return nil, err
	}
	s.pool = p
	p.mu.Lock()
	s.gen = p.gen
	p.mu.Unlock()
	if ce := p.log.Check(zap.DebugLevel, "server connected"); ce != nil {
		ce.Write(zap.Uint64("server_id", s.ID), zap.Uint32("backend_pid", s.KeyPID))
	}
	var l Loop
	if pick := p.loops.Load(); pick != nil {
		l = (*pick)()
	}
	s.startReading(l)
	if cfg.ConnectQuery != "" {
		if err := p.runConnectQuery(cctx, s, cfg.ConnectQuery); err != nil {
			return nil, err
		}
	}
	return s, nil
}

// connectFailed gives back the slot reserved for a connection attempt
// (and the limits that counted it) and schedules the back-off.
func (p *Pool) connectFailed(err error, taken []*Limit) {
	p.mu.Lock()
	p.total--
	giveLimits(taken)
	if err != nil {
		// A last attempt cut short by the caller's deadline must not hide
		// the reason the earlier ones failed.
		if p.lastErr == nil || !isDeadline(err) {
			p.lastErr = err
		}
		if p.backoff == 0 {
			p.backoff = firstBackoff
		} else {
			p.backoff = min(2*p.backoff, p.cfg.LoginRetry)
		}
		p.retryAt = time.Now().Add(p.backoff)
	}
	p.mu.Unlock()
	p.wakeOne()
}

// wakeOne tells the first waiter that capacity may be free.
func (p *Pool) wakeOne() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.wakeLocked()
}

func (p *Pool) wakeLocked() {
	if w := p.waiters.pop(); w != nil {
		w.hand(nil, nil)
	}
}

// expired reports whether s is past its lifetime or belongs to an older
// generation. p.mu must be held.
func (p *Pool) expired(s *Server) bool {
	return s.gen != p.gen || p.cfg.Lifetime > 0 && time.Since(s.created) >= p.cfg.Lifetime ||
		s.route.host != nil && s.route.offRoute()
}

// Release takes a server back. A broken or expired server is closed; a
// server with a cancel request in flight waits until it has finished.
func (p *Pool) Release(s *Server) {
	if s.pool != p && s.pool != nil {
		s.pool.Release(s) // a read sibling's server goes back to it
		return
	}
	s.SetHandler(nil)
	if !s.Broken() && s.park() {
		return
	}
	p.mu.Lock()
	if _, ok := p.inflight[s]; !ok {
		// Released twice: a bug, but never let one server reach two clients.
		p.mu.Unlock()
		p.log.DPanic("server released twice", zap.Uint64("server_id", s.ID))
		return
	}
	delete(p.inflight, s)
	if s.Broken() || p.closed || p.expired(s) || p.total > p.cfg.MaxSize+p.cfg.Reserve ||
		p.waiters.n == 0 && p.limitWantedLocked(s) {
		p.dropLocked(s)
		p.wakeLocked()
		p.mu.Unlock()
		s.close()
		return
	}
	if w := p.waiters.pop(); w != nil {
		p.inflight[s] = struct{}{}
		p.mu.Unlock()
		w.hand(s, nil)
		return
	}
	s.mu.Lock()
	s.lastUsed = time.Now()
	s.mu.Unlock()
	p.idle = append(p.idle, s)
	p.mu.Unlock()
}

// removeIdle drops a broken server from the idle list (called from its read
// goroutine).
func (p *Pool) removeIdle(s *Server) {
	p.mu.Lock()
	for i, x := range p.idle {
		if x == s {
			p.idle = append(p.idle[:i], p.idle[i+1:]...)
			p.dropLocked(s)
			p.wakeLocked()
			break
		}
	}
	p.mu.Unlock()
	s.close()
}

// Template returns the parameters and setting contexts of this pool's
// servers, connecting one if none is known yet. One caller fetches it at a
// time; the others wait for that fetch, each no longer than its ctx, and
// try themselves if it failed.
func (p *Pool) Template(ctx context.Context) (*Template, error) {
	for {
		p.mu.Lock()
		t, fetching := p.template, p.fetching
		if t == nil && fetching == nil {
			p.fetching = make(chan struct{})
			fetching = p.fetching
			p.mu.Unlock()
			break
		}
		p.mu.Unlock()
		if t != nil && !p.templateStale(t) {
			return t, nil
		}
		if t != nil {
			p.mu.Lock()
			if p.template == t {
				p.template = nil
			}
			p.mu.Unlock()
			continue
		}
		select {
		case <-fetching:
		case <-ctx.Done():
			return nil, p.waitErr()
		}
	}
	t, err := p.fetchTemplate(ctx)
	p.mu.Lock()
	if err == nil {
		p.template = t
	}
	close(p.fetching)
	p.fetching = nil
	p.mu.Unlock()
	return t, err
}

// fetchTemplate reads the template from a server.
func (p *Pool) fetchTemplate(ctx context.Context) (*Template, error) {
	s, err := p.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	res, err := s.Exec(ctx, "SELECT name, context FROM pg_catalog.pg_settings")
	if err != nil || res.Err != nil {
		s.MarkBroken()
		p.Release(s)
		if err == nil {
			err = res.Err
		}
		return nil, err
	}
	t := &Template{Params: map[string]string{}, Contexts: make(map[string]string, len(res.Rows)), routeGen: s.route.gen.Load()}
	for k, v := range s.Startup {
		t.Params[k] = v
	}
	for _, row := range res.Rows {
		if len(row) == 2 {
			t.Contexts[strings.ToLower(row[0])] = row[1]
		}
	}
	p.Release(s)
	return t, nil
}

// Close stops the pool: idle servers are closed now, lent ones when they
// come back.
func (p *Pool) Close() {
	if r := p.reads.Load(); r != nil {
		r.Close()
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	close(p.stop)
	if p.waitTimer != nil {
		p.waitTimer.Stop()
		p.timerAt = time.Time{}
	}
	if p.reserveTimer != nil {
		p.reserveTimer.Stop()
		p.reserveAt = time.Time{}
	}
	idle := p.idle
	p.idle = nil
	for _, s := range idle {
		p.dropLocked(s)
	}
	for w := p.waiters.pop(); w != nil; w = p.waiters.pop() {
		if w.fn != nil {
			w.fn(nil, ErrClosed)
			continue
		}
		w.ch <- nil
	}
	lims := p.cfg.Limits
	p.mu.Unlock()
	for _, l := range lims {
		l.leave(p)
	}
	for _, s := range idle {
		s.close()
	}
}

// Wait blocks until every server of a closed pool has ended.
func (p *Pool) Wait(ctx context.Context) error {
	if r := p.reads.Load(); r != nil {
		if err := r.Wait(ctx); err != nil {
			return err
		}
	}
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		p.mu.Lock()
		n := p.total
		p.mu.Unlock()
		if n == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
}

// maintain closes servers past their idle timeout or lifetime and keeps
// MinSize servers open.
func (p *Pool) maintain() {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.sweep()
		p.fill()
	}
}

func (p *Pool) sweep() {
	var drop []*Server
	p.mu.Lock()
	keep := p.idle[:0]
	for i, s := range p.idle {
		// idle is LIFO: the oldest-used servers are at the front.
		s.mu.Lock()
		idleFor := time.Since(s.lastUsed)
		s.mu.Unlock()
		surplus := p.total-len(drop) > p.cfg.MinSize
		if s.Broken() || p.expired(s) || (p.cfg.IdleTimeout > 0 && idleFor >= p.cfg.IdleTimeout && surplus) {
			drop = append(drop, s)
			continue
		}
		keep = append(keep, p.idle[i])
	}
	for i := len(keep); i < len(p.idle); i++ {
		p.idle[i] = nil
	}
	p.idle = keep
	for _, s := range drop {
		p.dropLocked(s)
	}
	p.mu.Unlock()
	for _, s := range drop {
		if ce := p.log.Check(zap.DebugLevel, "closing idle server"); ce != nil {
			ce.Write(zap.Uint64("server_id", s.ID))
		}
		s.close()
	}
}

func (p *Pool) fill() {
	for {
		p.mu.Lock()
		if p.closed || time.Now().Before(p.retryAt) {
			p.mu.Unlock()
			return
		}
		taken, _, ok := p.growLocked(min(p.cfg.MinSize, p.cfg.MaxSize))
		p.mu.Unlock()
		if !ok {
			return // min_pool_size never waits for a shared limit
		}
		ctx, cancel := context.WithTimeout(context.Background(), p.Config().ConnectTimeout)
		s, err := p.connect(ctx)
		cancel()
		if err != nil {
			p.connectFailed(err, taken)
			return
		}
		p.mu.Lock()
		s.limits = taken
		p.inflight[s] = struct{}{}
		p.mu.Unlock()
		p.Release(s)
	}
}

// ServerInfo describes one server connection for SHOW SERVERS and metrics.
type ServerInfo struct {
	ID          uint64
	State       string // "idle" (in the pool) or "active" (lent out)
	BackendPID  uint32
	ConnectTime time.Time
	LastUsed    time.Time
	Network     string
	Address     string

	LocalAddress string // mux's end of the connection
	CloseNeeded  bool   // closed when released (RECONNECT, a moved target, lifetime)
	FD           int    // the socket's descriptor, -1 if unknown (SHOW FDS)
}

// Servers lists the pool's open server connections, the read
// sibling's included.
func (p *Pool) Servers() []ServerInfo {
	var reads []ServerInfo
	if r := p.reads.Load(); r != nil {
		reads = r.Servers()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]ServerInfo, 0, len(p.idle)+len(p.inflight)+len(reads))
	out = append(out, reads...)
	add := func(s *Server, state string) {
		s.mu.Lock()
		last := s.lastUsed
		s.mu.Unlock()
		out = append(out, ServerInfo{ID: s.ID, State: state, BackendPID: s.KeyPID, ConnectTime: s.created,
			LastUsed: last, Network: s.network, Address: s.address,
			LocalAddress: s.conn.LocalAddr().String(), CloseNeeded: p.expired(s), FD: rawio.FD(s.conn)})
	}
	for _, s := range p.idle {
		add(s, "idle")
	}
	for s := range p.inflight {
		add(s, "active")
	}
	return out
}

// MaxWait returns how long the oldest waiter has waited (0 if none).
func (p *Pool) MaxWait() time.Duration {
	var d time.Duration
	if r := p.reads.Load(); r != nil {
		d = r.MaxWait()
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if w := p.waiters.head; w != nil {
		return max(d, time.Since(w.since))
	}
	return d
}

func isDeadline(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) ||
		errors.As(err, &ne) && ne.Timeout()
}
