// Package proxy accepts client connections and relays them to pooled
// PostgreSQL servers: startup, authentication, the relay itself, pool-mode
// rules, parameter sync and cancel routing.
package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/muxpg/mux/admin"
	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/cancelkey"
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/login"
	"github.com/muxpg/mux/pool"
	"github.com/muxpg/mux/session"
)

// Proxy is the multiplexer: listeners, client sessions and pools. Create it
// with New, feed it listeners with Serve, and stop it with Shutdown.
type Proxy struct {
	// snap is the configuration in force with its users, hba rules and
	// TLS (snapshot.go), replaced whole by Reload.
	snap atomic.Pointer[snapshot]
	// setMu serializes Reload and the console's SET (set.go), each of
	// which replaces snap; readers load snap without it.
	setMu sync.Mutex
	log   *zap.Logger

	nclients atomic.Int64 // client connections being served (incl. login)
	served   atomic.Int64 // client logins so far
	nextID   atomic.Uint64

	poolMu sync.Mutex
	pools  map[poolKey]*pool.Pool
	// stmts holds, per pool, the prepared statements of transaction-mode
	// clients.
	stmts map[poolKey]*session.Registry
	stats map[poolKey]*poolStats
	// notifiers are the LISTEN fan-out connections, per pool.
	notifiers map[poolKey]*notifier
	hostSets  hostSets // per routed entry (hosts.go)
	attachSeq atomic.Uint64
	auth      authLookups
	failures  login.Failures
	obs       Observer

	poller  poller     // parked idle clients (park.go)
	loops   loops      // event loops (workers; loops.go)
	sweepMu sync.Mutex // guards sweep
	sweep   struct {
		stop, done chan struct{} // nil until the sweeper starts
		ended      bool          // Shutdown stopped it: do not start again
	}
	statsLog statsLog // log_stats' schedule; the sweeper's alone (statslog.go)

	keysMu sync.Mutex             // guards keys, longKeys, conns and clientCounts
	keys   map[uint32]*clientConn // by mux-issued BackendKeyData process ID
	// longKeys holds the whole secret of 3.2 clients' keys, by PID.
	longKeys map[uint32][]byte
	// instance names this mux in its fleet in the cancel keys it issues
	// (peer_id, read at start); 0: mux runs alone.
	instance cancelkey.Instance
	conns    map[net.Conn]struct{} // every accepted connection, for shutdown
	// clientCounts: logged-in clients per database and user (limits.go).
	clientCounts clientCounts
	// limits: server limits shared by pools (limits.go).
	limits limitSet
	// loginWaits are the logins waiting for their pool's first server,
	// which a shutdown ends with 57P01 (waitnotice.go).
	loginWaits loginWaits

	fleetLog  *zap.Logger // cancel requests forwarded to peers (fleet.go)
	peerSlots peerSlots

	// detach is the hand-over of idle clients under way (handover.go);
	// predecessor is where the process this one took over from takes
	// cancel requests for the clients it kept (nil: none).
	detach      atomic.Pointer[detachRun]
	predecessor atomic.Pointer[string]

	lnMu      sync.Mutex
	listeners []net.Listener
	closing   atomic.Bool    // listeners closed
	draining  atomic.Bool    // Shutdown has begun
	refusing  atomic.Bool    // logins are refused with 57P03 (draining with listeners open)
	wg        sync.WaitGroup // accept loops and connection goroutines
	// closeBetween is set by a drain that closes transaction- and
	// statement-mode clients between transactions (drain.go); adopt
	// reads it.
	closeBetween atomic.Bool

	// admin is the gate the console's PAUSE, KILL and DISABLE set
	// (gate.go); console is the console itself, with its sessions.
	admin   adminState
	console *admin.Console
	// OnReload and OnShutdown run the console's RELOAD and SHUTDOWN; set by
	// cmd/mux before Serve (nil: the command is refused). Version is shown
	// by SHOW VERSION.
	OnReload   func() error
	OnShutdown func(DrainMode)
	Version    string
}

type poolKey struct {
	database string // the name the client asked for
	user     string
}

// New builds a proxy from a configuration and the files it names (see
// config.Load and config.Resolve).
func New(cs *config.Snapshot, log *zap.Logger) (*Proxy, error) {
	p := &Proxy{
		log:       log.Named("proxy"),
		pools:     map[poolKey]*pool.Pool{},
		stmts:     map[poolKey]*session.Registry{},
		stats:     map[poolKey]*poolStats{},
		notifiers: map[poolKey]*notifier{},
		obs:       nopObserver{},
		keys:      map[uint32]*clientConn{},
		conns:     map[net.Conn]struct{}{},
		fleetLog:  log.Named("fleet"),
		instance:  cancelkey.Instance(cs.Config.PeerID),
	}
	p.console = admin.New(consoleTarget{p})
	p.poller.log = log.Named("park")
	s, err := newSnapshot(cs)
	if err != nil {
		return nil, err
	}
	p.snap.Store(s)
	return p, nil
}

// Config returns the configuration in force.
func (p *Proxy) Config() *config.Config { return p.config() }

// config returns the configuration in force.
func (p *Proxy) config() *config.Config { return p.snap.Load().cfg }

// Listen opens every listener the config names: TCP addresses and the
// Unix socket.
func (p *Proxy) Listen() ([]net.Listener, error) {
	lc := net.ListenConfig{KeepAliveConfig: p.keepAlive(p.config()).Config(), Control: pool.ListenControl(p.config().TCPSocketBuffer, p.config().TCPDeferAccept.D())}
	var lns []net.Listener
	fail := func(err error) ([]net.Listener, error) {
		for _, l := range lns {
			l.Close()
		}
		return nil, err
	}
	for _, addr := range p.config().Listen {
		ln, err := lc.Listen(context.Background(), "tcp", addr)
		if err != nil {
			return fail(fmt.Errorf("listen: %w", err))
		}
		lns = append(lns, ln)
	}
	if path := p.config().UnixSocketPath(); path != "" {
		if err := removeStaleSocket(path); err != nil {
			return fail(err)
		}
		ln, err := net.Listen("unix", path)
		if err != nil {
			return fail(fmt.Errorf("listen: %w", err))
		}
		if err := os.Chmod(path, p.config().UnixSocketFileMode()); err != nil {
			ln.Close()
			return fail(fmt.Errorf("unix_socket_mode: %w", err))
		}
		if gid, err := p.config().UnixSocketGID(); err != nil || gid >= 0 && os.Chown(path, -1, gid) != nil {
			ln.Close()
			return fail(fmt.Errorf("unix_socket_group: cannot give %s group %q", path, p.config().UnixSocketGroup))
		}
		lns = append(lns, ln)
	}
	return lns, nil
}

// removeStaleSocket deletes a socket file left behind by a previous run;
// one that still answers belongs to a live process and is an error.
func removeStaleSocket(path string) error {
	if _, err := os.Stat(path); err != nil {
		return nil
	}
	if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
		c.Close()
		return fmt.Errorf("unix socket %s is in use by another process", path)
	}
	if err := os.Remove(path); err != nil {
		return fmt.Errorf("removing stale unix socket: %w", err)
	}
	_ = os.MkdirAll(filepath.Dir(path), 0o755)
	return nil
}

func (p *Proxy) keepAlive(cfg *config.Config) pool.KeepAlive {
	return pool.KeepAlive{
		Enable:   cfg.TCPKeepalive,
		Idle:     cfg.TCPKeepIdle.D(),
		Interval: cfg.TCPKeepIntvl.D(),
		Count:    cfg.TCPKeepCnt,
		// UserTimeout applies to servers; clients get it at accept.
		UserTimeout: cfg.TCPUserTimeout.D(),
		Buffer:      cfg.TCPSocketBuffer,
	}
}

// Serve accepts connections on ln until it is closed.
func (p *Proxy) Serve(ln net.Listener) error {
	// The accept loop holds the WaitGroup while it runs, so that the Add
	// for each connection never races Shutdown's Wait (the count is above
	// zero), and a connection accepted as StopAccepting closes ln is served
	// rather than dropped: after a hand-over it is a client like any other.
	p.lnMu.Lock()
	if p.closing.Load() {
		p.lnMu.Unlock()
		ln.Close()
		return net.ErrClosed
	}
	p.listeners = append(p.listeners, ln)
	p.wg.Add(1)
	p.lnMu.Unlock()
	defer p.wg.Done()
	log := p.log.With(zap.Stringer("listen", ln.Addr()))
	log.Info("listening")
	backoff := 5 * time.Millisecond
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return nil
			}
			// Out of file descriptors and the like: wait and carry on
			// rather than spin or give up.
			log.Warn("accept failed", zap.Error(err))
			time.Sleep(backoff)
			backoff = min(2*backoff, time.Second)
			continue
		}
		backoff = 5 * time.Millisecond
		if err := pool.SetUserTimeout(conn, p.config().TCPUserTimeout.D()); err != nil {
			log.Warn("cannot set tcp_user_timeout", zap.Error(err))
		}
		p.wg.Add(1)
		p.keysMu.Lock()
		p.conns[conn] = struct{}{}
		p.keysMu.Unlock()
		go p.serveConn(conn)
	}
}

// connDone ends the bookkeeping of an accepted connection.
func (p *Proxy) connDone(conn net.Conn) {
	p.keysMu.Lock()
	delete(p.conns, conn)
	p.keysMu.Unlock()
	p.nclients.Add(-1)
	p.wg.Done()
}

// StopAccepting closes the listeners (a Unix socket file is left in place
// for a successor that took the sockets over). Connections already accepted
// carry on.
func (p *Proxy) StopAccepting() {
	p.lnMu.Lock()
	p.closing.Store(true)
	for _, ln := range p.listeners {
		if ul, ok := ln.(*net.UnixListener); ok {
			ul.SetUnlinkOnClose(false)
		}
		ln.Close()
	}
	p.listeners = nil
	p.lnMu.Unlock()
}

// Draining reports whether Shutdown has begun.
func (p *Proxy) Draining() bool { return p.draining.Load() }

// Shutdown drains with WaitForClients: new connections are answered
// FATAL 57P03 while the logged-in clients finish and leave on their own,
// until ctx ends; then the rest are ended with FATAL 57P01, the listeners
// closed and every pool closed. It returns ctx.Err() if clients had to be
// ended.
//
// After StopAccepting (a hand-over: a successor accepts now) nothing is
// refused: every connection still logging in was accepted before the
// successor took over, and its client expects to be served.
func (p *Proxy) Shutdown(ctx context.Context) error { return p.Drain(ctx, WaitForClients) }

// Drain is Shutdown, with mode saying what becomes of the connected
// clients before ctx ends (drain.go).
func (p *Proxy) Drain(ctx context.Context, mode DrainMode) error {
	p.lnMu.Lock()
	p.refusing.Store(!p.closing.Load())
	p.draining.Store(true)
	p.lnMu.Unlock()
	p.waitForClients(ctx, mode)
	p.StopAccepting()

	done := make(chan struct{})
	go func() { p.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		p.keysMu.Lock()
		clients := make([]*clientConn, 0, len(p.keys))
		for _, c := range p.keys {
			clients = append(clients, c)
		}
		p.keysMu.Unlock()
		for _, c := range clients {
			c.sendError(wire.Fatal(wire.CodeAdminShutdown, "terminating connection due to administrator command"))
			c.terminate()
		}
		p.loginWaits.end()
		p.keysMu.Lock()
		for conn := range p.conns {
			conn.Close()
		}
		p.keysMu.Unlock()
		// A parked client whose socket was closed hears nothing from
		// epoll: wake every one so that its session ends.
		for _, c := range p.loggedInClients(nil) {
			c.wake()
		}
		<-done
	}
	p.stopParking()
	p.poolMu.Lock()
	pools := p.pools
	p.pools = map[poolKey]*pool.Pool{}
	notifiers := p.notifiers
	p.notifiers = map[poolKey]*notifier{}
	p.poolMu.Unlock()
	for _, n := range notifiers {
		n.close()
	}
	p.closeAuth()
	for _, pl := range pools {
		pl.Close()
	}
	wctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, pl := range pools {
		_ = pl.Wait(wctx)
	}
	p.closeHostSets()
	p.stopLoops()
	return ctx.Err()
}

// poolFor returns the pool for (database, user) and its prepared
// statement registry, creating them. The caller holds a reference until
// its connection ends (releasePool). A pool is shared: a new one takes the
// settings and server TLS in force, read under poolMu as Reload swaps them.
func (p *Proxy) poolFor(dbName string, db config.Database, user string, u *login.User) (*pool.Pool, *session.Registry, *poolStats) {
	key := poolKey{dbName, user}
	p.poolMu.Lock()
	if pl := p.pools[key]; pl != nil {
		st := p.stats[key]
		st.refs++
		p.poolMu.Unlock()
		return pl, p.stmts[key], st
	}
	pl := pool.New(p.limitedPoolConfig(p.snapshot(), dbName, db, user, u),
		p.log.Named("pool").With(zap.String("database", dbName), zap.String("user", user)))
	if p.loopsOn() {
		pl.SetLoops(p.serverLoop)
	}
	p.pools[key] = pl
	reg := newStmtRegistry()
	p.stmts[key] = reg
	st := &poolStats{obs: p.obs.Pool(dbName, user), refs: 1}
	p.stats[key] = st
	p.poolMu.Unlock()
	p.startSweeper() // it drops pools left idle (autodb_idle_timeout)
	return pl, reg, st
}

// releasePool ends the client's use of the pool poolFor gave it, once.
func (c *clientConn) releasePool() {
	if c.stats == nil || c.poolReleased {
		return
	}
	c.poolReleased = true
	p := c.p
	p.poolMu.Lock()
	if c.stats.refs--; c.stats.refs == 0 {
		c.stats.unused = time.Now()
	}
	p.poolMu.Unlock()
}

// dropIdlePools drops the pools of databases without an entry of their own
// ("*", or removed by a reload) that no client has used for
// autodb_idle_timeout and that are neither paused nor disabled: closed,
// and gone from SHOW POOLS/STATS and metrics. Idle auth_query pools and
// expired auth_query answers go too.
func (p *Proxy) dropIdlePools(now time.Time) {
	cfg := p.config()
	d := cfg.AutodbIdleTimeout.D()
	if d <= 0 {
		return
	}
	p.dropIdleAuth(now, d)
	type dropped struct {
		key poolKey
		pl  *pool.Pool
		n   *notifier
	}
	var drop []dropped
	p.poolMu.Lock()
	for key, st := range p.stats {
		if st.refs > 0 || now.Sub(st.unused) < d {
			continue
		}
		if _, own := cfg.Databases[key.database]; own && key.database != config.WildcardDatabase {
			continue
		}
		if p.admin.isPaused(key.database) || p.admin.isDisabled(key.database) {
			continue // the console keeps showing it, for RESUME or ENABLE
		}
		drop = append(drop, dropped{key, p.pools[key], p.notifiers[key]})
		delete(p.pools, key)
		delete(p.stmts, key)
		delete(p.stats, key)
		delete(p.notifiers, key)
		st.obs.Close()
	}
	p.poolMu.Unlock()
	for _, x := range drop {
		if x.n != nil {
			x.n.close()
		}
		x.pl.Close()
		p.log.Info("idle pool dropped (autodb_idle_timeout)",
			zap.String("database", x.key.database), zap.String("user", x.key.user))
	}
}

// poolConfig is the pool configuration for user's connections to db under
// the settings and server TLS of s.
func (p *Proxy) poolConfig(s *snapshot, db config.Database, user string, u *login.User) pool.Config {
	cfg := s.cfg
	t := pool.Target{
		Host:        db.Host,
		Port:        db.Port,
		Database:    db.DBName,
		User:        user,
		KeepAlive:   p.keepAlive(cfg),
		MaxPrepared: cfg.MaxPreparedStatements,
		TLS:         s.serverTLS,
		Options:     db.ServerParameters.Startup(),
	}
	switch {
	case db.User != "":
		t.User, t.Password = db.User, db.Password
	case db.Password != "":
		t.Password = db.Password
	case u != nil:
		t.Password = u.Password
	}
	t.PasswordFrom = passwordSource(s, db, user, u)
	return pool.Config{
		Target:         t,
		MaxSize:        db.PoolSize,
		MinSize:        min(db.MinPoolSize, db.PoolSize),
		Lifetime:       cfg.ServerLifetimeFor(db),
		IdleTimeout:    cfg.ServerIdleTimeout.D(),
		CheckDelay:     cfg.ServerCheckDelay.D(),
		CheckQuery:     cfg.ServerCheckQuery,
		ConnectTimeout: cfg.ServerConnectTimeout.D(),
		LoginRetry:     cfg.ServerLoginRetry.D(),
		Hosts:          p.hostSetFor(cfg, db),
		ReadSplit:      db.ReadWriteSplit && cfg.PoolModeFor(db, user) == config.PoolModeTransaction,
		RoundRobin:     cfg.ServerRoundRobin,
		ConnectQuery:   db.ConnectQuery,
	}
}

// registerTries bounds the search for a free PID: in a fleet an instance
// has 2^17-1 of them (package cancelkey), and a full set must fail a login,
// not spin.
const registerTries = 64

// keyLocked files c under key k, which no live client has. p.keysMu held.
func (p *Proxy) keyLocked(c *clientConn, k cancelkey.Key) {
	c.key = cancelKey{pid: k.PID, secret: k.Head()}
	p.keys[k.PID] = c
	if k.Long() {
		if p.longKeys == nil {
			p.longKeys = map[uint32][]byte{}
		}
		p.longKeys[k.PID] = k.Secret
	}
}

// register issues c a random cancel key, unique among live clients, for
// protocol 3.minor, and returns it for the BackendKeyData.
func (p *Proxy) register(c *clientConn, minor uint32) (cancelkey.Key, error) {
	p.keysMu.Lock()
	defer p.keysMu.Unlock()
	if err := p.admitClientLocked(c); err != nil {
		return cancelkey.Key{}, err
	}
	for range registerTries {
		k := p.instance.Issue(minor)
		if p.keys[k.PID] != nil {
			continue
		}
		p.keyLocked(c, k)
		p.served.Add(1)
		return k, nil
	}
	p.forgetClientLocked(c)
	return cancelkey.Key{}, wire.Fatal(wire.CodeTooManyConnections, "sorry, too many clients already (no cancel key left for this instance)")
}

func (p *Proxy) unregister(c *clientConn) {
	if c.key.pid == 0 {
		return
	}
	p.keysMu.Lock()
	if p.keys[c.key.pid] == c {
		delete(p.keys, c.key.pid)
		delete(p.longKeys, c.key.pid)
		p.forgetClientLocked(c)
	}
	p.keysMu.Unlock()
}

// lookupKey returns the client that was issued k, or nil.
func (p *Proxy) lookupKey(k cancelkey.Key) *clientConn {
	p.keysMu.Lock()
	defer p.keysMu.Unlock()
	c := p.keys[k.PID]
	if c == nil {
		return nil
	}
	issued := cancelkey.Key{PID: c.key.pid, Secret: p.longKeys[k.PID]}
	if issued.Secret == nil {
		issued.Secret = binary.BigEndian.AppendUint32(nil, c.key.secret)
	}
	if !p.instance.Matches(issued, k) {
		return nil
	}
	return c
}

// PreparedStats returns prepared statement counters summed over pools.
func (p *Proxy) PreparedStats() PreparedStats {
	p.poolMu.Lock()
	defer p.poolMu.Unlock()
	var sum PreparedStats
	for _, r := range p.stmts {
		st := r.Stats()
		sum.ClientParses += st.ClientParses
		sum.ServerParses += st.ServerParses
		sum.Hits += st.Hits
		sum.Evictions += st.Evictions
	}
	return sum
}

// Served returns how many clients have logged in so far.
func (p *Proxy) Served() int64 { return p.served.Load() }

// loggedIn counts clients past login.
func (p *Proxy) loggedIn() int {
	p.keysMu.Lock()
	defer p.keysMu.Unlock()
	return len(p.keys)
}

// NumClients returns the number of client connections being served.
func (p *Proxy) NumClients() int { return int(p.nclients.Load()) }
