package proxy

// Handing idle clients over to a successor process (handover_socket).
//
// The old process asks each loop-driven client, on its own loop (the only
// goroutine that reads it), whether it is idle: between transactions, no
// server held or awaited, nothing buffered either way, not pinned, not
// LISTENing, not TLS, in transaction or statement mode, of a pool that
// does not log in with its clients' SCRAM keys. An idle one leaves the
// loop's set at once, unread; its socket is duplicated, its state (pool,
// parameters, prepared statements, cancel key) taken, and it leaves the
// registry without a byte sent or its connection shut down: closing the
// old descriptor does nothing to a socket the successor also holds. The
// successor (AdoptClient) checks the client's pool against its own
// configuration, registers the same cancel key and hands the socket to a
// loop, as a login would; bytes the client sent meanwhile wait in the
// socket. Every other client stays here, until a later round finds it
// idle (cmd/mux runs one every 200 ms) or the drain ends it; a cancel
// request for one of them that reaches the successor is forwarded here
// (ServeCancels, SetPredecessor). A batch that cannot be sent is adopted
// back here.

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"math"
	"net"
	"os"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/muxpg/mux/admin"
	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/evloop"
	"github.com/muxpg/mux/internal/cancelkey"
	"github.com/muxpg/mux/internal/handover"
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/session"
)

// detachWait bounds the wait for the loops' answers.
const detachWait = 10 * time.Second

// detachRun is one hand-over's collection of answers.
type detachRun struct {
	answers chan detached // buffered for every client asked
	// room is how many more clients the successor takes (its open-file
	// room); each client that leaves takes one first.
	room atomic.Int64
}

// take reserves a place at the successor for one client.
func (r *detachRun) take() bool {
	if r.room.Add(-1) >= 0 {
		return true
	}
	r.room.Add(1)
	return false
}

// detached is a client's answer: fd >= 0 and its state if it left.
type detached struct {
	c  *clientConn
	fd int
	st handover.ClientState
}

// HandOverClients moves every idle client to the successor s and returns
// how many went. It runs after the successor took the listeners, and
// again (cmd/mux) for the clients that were busy: a client of the
// goroutine driver moves once it is parked, so within a second of going
// idle.
func (p *Proxy) HandOverClients(s *handover.Successor) int {
	clients := p.loggedInClients(nil)
	run := &detachRun{answers: make(chan detached, len(clients))}
	room := s.Room() // < 0: no limit
	if room == 0 || s.Err() != nil {
		return 0
	}
	run.room.Store(math.MaxInt64)
	if room > 0 {
		run.room.Store(int64(room))
	}
	b := handoverBatch{p: p, s: s, run: run}
	var asked []*clientConn
	for _, c := range clients {
		switch {
		case c.tls:
		case c.loopDriven():
			asked = append(asked, c)
		default:
			if d := c.detachParked(run); d.fd >= 0 {
				b.add(d)
			}
		}
	}
	if len(asked) == 0 {
		return b.flush()
	}
	p.detach.Store(run)
	defer p.detach.Store(nil)
	for _, c := range asked {
		c.lc.loop.Post(c, evloop.Event{Kind: evDetach})
	}
	timeout := time.NewTimer(detachWait)
	defer timeout.Stop()
	for range asked {
		select {
		case d := <-run.answers:
			if d.fd >= 0 {
				b.add(d)
			}
		case <-timeout.C:
			p.log.Warn("hand-over: some event loops did not answer in time; their clients stay")
			run.close()
			// A client that took its place just before has left its
			// loop: its answer comes at once.
			grace := time.After(time.Second)
			for {
				select {
				case d := <-run.answers:
					if d.fd >= 0 {
						b.add(d)
					}
				case <-grace:
					return b.flush()
				}
			}
		}
	}
	return b.flush()
}

// Movable counts the clients that may still move to a successor once
// they are idle: not TLS, not in session mode.
func (p *Proxy) Movable() int {
	n := 0
	for _, c := range p.loggedInClients(nil) {
		c.mu.Lock()
		if !c.tls && !c.gone && c.core.Mode != session.Session {
			n++
		}
		c.mu.Unlock()
	}
	return n
}

// close lets no more clients leave.
func (r *detachRun) close() { r.room.Store(math.MinInt64 / 2) }

// handoverBatch gathers detached clients and sends them in batches.
type handoverBatch struct {
	p     *Proxy
	s     *handover.Successor
	run   *detachRun
	ds    []detached
	size  int
	moved int
	err   error
}

func (b *handoverBatch) add(d detached) {
	b.p.leave(d.c, &d.st)
	b.ds = append(b.ds, d)
	b.size += 256 + len(d.st.Statements)*64
	for _, st := range d.st.Statements {
		b.size += len(st.Query)
	}
	if handover.ShouldFlush(len(b.ds), b.size) {
		b.flush()
	}
}

// flush sends the batch, and returns how many clients have moved so far.
// Clients a failed send could not move are taken back, as a successor
// would have taken them, and stay.
func (b *handoverBatch) flush() int {
	if len(b.ds) == 0 {
		return b.moved
	}
	fds := make([]int, len(b.ds))
	states := make([]handover.ClientState, len(b.ds))
	for i, d := range b.ds {
		fds[i], states[i] = d.fd, d.st
	}
	if b.err == nil {
		b.err = b.s.SendBatch(fds, states)
		if b.err != nil {
			b.run.close() // the others stay
			b.p.log.Warn("hand-over of clients failed; they stay here", zap.Error(b.err))
		}
	}
	for i, fd := range fds {
		if b.err == nil {
			closeFD(fd)
			continue
		}
		b.p.AdoptClient(os.NewFile(uintptr(fd), "client"), states[i])
	}
	if b.err == nil {
		b.moved += len(b.ds)
	}
	b.ds, b.size = b.ds[:0], 0
	return b.moved
}

// loopDetach answers evDetach on c's loop: if c is idle it leaves the
// loop, unread, and its duplicated socket and state go to the run.
func (c *clientConn) loopDetach() {
	run := c.p.detach.Load()
	if run == nil {
		return
	}
	d := detached{c: c, fd: -1}
	defer func() { run.answers <- d }()
	lc := c.lc
	if !lc.added || lc.state != lcReading || lc.flushing.Load() || lc.sout != nil || !lc.out.empty() {
		return
	}
	if c.in.bp != nil && c.in.r < c.in.w || c.in.fr.Mid() {
		return // part of a message: only this process has it
	}
	fd := dupSocket(c.in.raw)
	if fd < 0 {
		return
	}
	var ok bool
	if d.st, ok = c.claimForHandover(run); !ok {
		closeFD(fd)
		return
	}
	lc.state = lcEnded
	c.loopMask(true)
	lc.loop.Forget(c.id)
	if c.in.bp != nil {
		wire.PutBuf(c.in.bp)
		c.in.bp = nil
	}
	d.fd = fd
}

// empty reports whether nothing waits to be written to the client.
func (q *outQueue) empty() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.q == nil && !q.draining && !q.dead
}

// detachParked takes a parked client of the goroutine driver out of the
// poller if it is idle (fd >= 0); a client that is not parked, or not
// idle, stays (resumed as a wake would).
func (c *clientConn) detachParked(run *detachRun) detached {
	d := detached{c: c, fd: -1}
	if !c.park.state.CompareAndSwap(parked, running) {
		return d
	}
	// This goroutine runs the session now, as one the poller woke would.
	c.p.poller.forget(c)
	fd := -1
	if c.in.raw != nil && c.in.bp == nil && !c.in.fr.Mid() {
		fd = dupSocket(c.in.raw)
	}
	ok := false
	if fd >= 0 {
		d.st, ok = c.claimForHandover(run)
	}
	if !ok {
		if fd >= 0 {
			closeFD(fd)
		}
		go c.resume()
		return d
	}
	c.p.poller.unwatch(c)
	d.fd = fd
	return d
}

// claimForHandover marks c gone and returns its state for the successor
// if it is idle, quiet and the successor has room for it. Marked gone,
// KILL, the sweeper and the drain leave it alone.
func (c *clientConn) claimForHandover(run *detachRun) (handover.ClientState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.idleForHandoverLocked() || !c.quietLocked() || !run.take() {
		return handover.ClientState{}, false
	}
	c.gone = true
	return c.handoverStateLocked(), true
}

// idleForHandoverLocked reports whether c may move to a successor now.
// c.mu held.
func (c *clientConn) idleForHandoverLocked() bool {
	if c.gone || c.tls || c.server != nil || c.waiting || c.core.Mode == session.Session ||
		!c.core.Clean() || c.core.Status() != 'I' {
		return false
	}
	if c.pin.reason != "" || c.pin.checking || c.pin.loaded || c.pin.stateDirty || c.rw.busy() {
		return false
	}
	if len(c.ln.pending) > 0 || len(c.ln.apply) > 0 || len(c.ln.notes) > 0 || c.listening() {
		return false
	}
	if c.track && c.trk.Owes() {
		return false
	}
	// A pass-through pool logs in to Postgres with its clients' SCRAM
	// keys, which a successor never sees.
	return !c.pool.UsesClientKey()
}

// quietLocked reports whether no reply to c is being written or waits to
// be. A server's reader lets go of the server under c.mu and writes the
// reply after, under wmu, which it takes before it lets go of c.mu
// (sendOrdered); so, with c.mu held, a reply under way holds wmu or waits
// in the output queue. Its client stays until the reply has reached it
// from here: the socket leaving meanwhile would lose it. c.mu held.
func (c *clientConn) quietLocked() bool {
	if !c.wmu.TryLock() {
		return false
	}
	defer c.wmu.Unlock()
	return c.lc == nil || c.lc.out.empty() && !c.lc.flushing.Load()
}

// listening reports whether c listens on any channel. c.mu held (the lock
// order allows the notifier's under it).
func (c *clientConn) listening() bool {
	if c.ln.listens == nil {
		return false
	}
	n := c.p.existingNotifier(poolKey{c.database, c.user})
	if n == nil {
		return false
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	return len(c.ln.listens) > 0
}

// handoverStateLocked is c's state for a successor. c.mu held.
func (c *clientConn) handoverStateLocked() handover.ClientState {
	st := handover.ClientState{
		Database:  c.database,
		User:      c.user,
		KeyPID:    c.key.pid,
		Connected: c.connected.UnixNano(),
	}
	for i, n := range trackedParams {
		if v, ok := c.want.get(i); ok {
			st.Params = append(st.Params, handover.Param{Name: n, Value: v})
		}
	}
	for _, e := range c.extra {
		st.Settings = append(st.Settings, handover.Param{Name: e.Name, Value: e.Value})
	}
	for n := range c.pin.customNames {
		st.CustomNames = append(st.CustomNames, n)
	}
	sort.Strings(st.CustomNames)
	if c.track {
		for _, s := range c.trk.Statements() {
			st.Statements = append(st.Statements, handover.Statement{Name: s.Name, Query: s.Query, ParamOIDs: s.ParamOIDs})
		}
	}
	return st
}

// leave ends c's bookkeeping here once it has left for a successor: no
// byte is sent, and closing this process's descriptor leaves the
// connection open. st gets the cancel key's whole secret.
func (p *Proxy) leave(c *clientConn, st *handover.ClientState) {
	p.keysMu.Lock()
	if long := p.longKeys[c.key.pid]; long != nil {
		st.KeySecret = append([]byte(nil), long...)
	} else {
		st.KeySecret = binary.BigEndian.AppendUint32(nil, c.key.secret)
	}
	p.keysMu.Unlock()
	if c.ln.listens != nil {
		if n := p.existingNotifier(poolKey{c.database, c.user}); n != nil {
			n.forget(c)
		}
	}
	c.mu.Lock()
	if c.qtimer != nil {
		c.qtimer.Stop()
	}
	c.mu.Unlock()
	c.release(c.park.accepted)
	if ce := c.p.log.Check(zap.DebugLevel, "client handed over to the new process"); ce != nil {
		ce.Write(zap.Uint64("client_id", c.id))
	}
}

// AdoptClient takes over a client a predecessor handed over: f is its
// socket (AdoptClient owns it), st its state. A client whose pool this
// configuration lacks is ended with FATAL 57P01 saying why.
func (p *Proxy) AdoptClient(f *os.File, st handover.ClientState) {
	conn, err := net.FileConn(f)
	f.Close()
	if err != nil {
		p.log.Warn("hand-over: a client's socket is unusable", zap.Error(err))
		return
	}
	p.wg.Add(1)
	p.nclients.Add(1)
	p.keysMu.Lock()
	p.conns[conn] = struct{}{}
	p.keysMu.Unlock()
	c := &clientConn{p: p, conn: conn, id: p.nextID.Add(1), connected: time.Unix(0, st.Connected)}
	c.user, c.database = st.User, st.Database
	s := p.snapshot()
	if db, ok := s.cfg.LookupDatabase(st.Database); ok && s.users[st.User] == nil && firstNonEmpty(db.AuthUser, s.cfg.AuthUser) != "" {
		// An auth_query lookup may wait for Postgres: not on the
		// goroutine that receives the other clients.
		go c.settleIn(&st)
		return
	}
	c.settleIn(&st)
}

// settleIn is the rest of AdoptClient: the client's state, its pool and its
// relay, or its end.
func (c *clientConn) settleIn(st *handover.ClientState) {
	if err := c.takeOver(st); err != nil {
		c.loginFailed(err)
		c.release(c.conn)
		return
	}
	c.logLogin(false, zap.Bool("handed_over", true))
	go c.serveRelay(c.conn)
}

// takeOver sets c up from a predecessor's state, as login would have.
func (c *clientConn) takeOver(st *handover.ClientState) error {
	p := c.p
	s := p.snapshot()
	if p.refusing.Load() {
		return wire.Fatal(wire.CodeAdminShutdown, "terminating connection: the new mux process is shutting down")
	}
	db, ok := s.cfg.LookupDatabase(st.Database)
	if !ok || admin.IsDatabase(st.Database) {
		return wire.Fatal(wire.CodeAdminShutdown, "terminating connection: database %s is not in the new mux process's configuration", quote(st.Database))
	}
	if session.ModeOf(s.cfg.PoolModeFor(db, st.User)) == session.Session {
		return wire.Fatal(wire.CodeAdminShutdown, "terminating connection: the new mux process runs database %s in session mode", quote(st.Database))
	}
	u := s.users[st.User]
	if authUser := firstNonEmpty(db.AuthUser, s.cfg.AuthUser); u == nil && authUser != "" {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		found, err := p.lookupUser(ctx, s, db, authUser, st.User)
		cancel()
		if err != nil {
			return wire.Fatal(wire.CodeAdminShutdown, "terminating connection: the new mux process could not look up user %s with auth_query: %v", quote(st.User), err)
		}
		u = found
	}
	if u == nil && s.cfg.AuthType != config.AuthTrust {
		return wire.Fatal(wire.CodeAdminShutdown, "terminating connection: user %s is not in the new mux process's configuration", quote(st.User))
	}
	if l := p.pickLoop(); l != nil && s.cfg.ServerTLSSSLMode == "disable" {
		c.lc = c.newLoopClient(l)
	} else if p.loopsOn() {
		c.lc = c.newLoopClient(nil)
	}
	c.joinPool(s.cfg, &startup{User: st.User, Database: st.Database}, db, u)
	if !c.track && len(st.Statements) > 0 {
		return wire.Fatal(wire.CodeAdminShutdown, "terminating connection: the new mux process does not track prepared statements (max_prepared_statements = 0)")
	}
	c.restoreState(st)
	return p.registerKey(c, cancelkey.Key{PID: st.KeyPID, Secret: st.KeySecret})
}

// restoreState takes a predecessor's parameters, settings and prepared
// statements.
func (c *clientConn) restoreState(st *handover.ClientState) {
	for _, pr := range st.Params {
		if i := trackedIndex(pr.Name); i >= 0 {
			c.want.set(i, pr.Value)
		}
	}
	for _, e := range st.Settings {
		c.extra = append(c.extra, setting{Name: e.Name, Value: e.Value})
	}
	sort.Slice(c.extra, func(i, j int) bool { return c.extra[i].Name < c.extra[j].Name })
	c.watchCustom(st.CustomNames)
	if c.track {
		stmts := make([]session.Prepared, len(st.Statements))
		for i, s := range st.Statements {
			stmts[i] = session.Prepared{Name: s.Name, Query: s.Query, ParamOIDs: s.ParamOIDs}
		}
		c.trk.Restore(stmts)
	}
}

// registerKey registers c under the cancel key its predecessor issued.
func (p *Proxy) registerKey(c *clientConn, k cancelkey.Key) error {
	if k.PID == 0 || len(k.Secret) < cancelkey.ShortSecretLen {
		return wire.Fatal(wire.CodeAdminShutdown, "terminating connection: the hand-over carried no cancel key")
	}
	p.keysMu.Lock()
	defer p.keysMu.Unlock()
	if p.keys[k.PID] != nil {
		return wire.Fatal(wire.CodeAdminShutdown, "terminating connection: its cancel key is in use in the new mux process")
	}
	// Counted for max_db_client_connections and max_user_client_connections
	// (which unregister uncounts), never refused: the client was admitted.
	p.countClientLocked(c)
	p.keyLocked(c, k)
	return nil
}

// SetPredecessor names the Unix socket where the process this one took
// over from takes cancel requests for the clients it kept: a request for
// a key unknown here goes there.
func (p *Proxy) SetPredecessor(cancelAddr string) {
	if cancelAddr != "" {
		p.predecessor.Store(&cancelAddr)
	}
}

// forwardToPredecessor sends a cancel request for a key unknown here to
// the predecessor, if there is one; false if there is none.
func (p *Proxy) forwardToPredecessor(k cancelkey.Key) bool {
	addr := p.predecessor.Load()
	if addr == nil {
		return false
	}
	err := sendCancelRequest(nil, config.PeerAddr{Network: "unix", Address: *addr}, k.PID, k.Secret, p.cancelDeadline())
	switch {
	case errors.Is(err, syscall.ENOENT) || errors.Is(err, syscall.ECONNREFUSED):
		// The predecessor has finished draining: the key is nobody's.
		debug(p.log, "cancel request for an unknown key dropped")
	case err != nil:
		p.log.Warn("forwarding a cancel request to the previous mux process failed", zap.Error(err))
	default:
		debug(p.log, "cancel request forwarded to the previous mux process")
	}
	return true
}

// cancelReadTimeout bounds how long a successor's forwarding connection
// may take to deliver its request.
const cancelReadTimeout = 10 * time.Second

// maxCancelPacket bounds a forwarded CancelRequest: length, code, PID and
// the longest secret.
const maxCancelPacket = 4 + 4 + 4 + cancelkey.MaxSecretLen

// ServeCancels takes cancel requests a successor forwards (one per
// connection, answered by closing it once handled) on ln until ln is
// closed.
func (p *Proxy) ServeCancels(ln net.Listener) {
	for {
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer conn.Close()
			// The successor writes its request at once; a connection that
			// sends nothing is not held for long.
			_ = conn.SetDeadline(time.Now().Add(cancelReadTimeout))
			var hdr [4]byte
			if _, err := io.ReadFull(conn, hdr[:]); err != nil {
				return
			}
			n := int(binary.BigEndian.Uint32(hdr[:]))
			if n < 8 || n > maxCancelPacket {
				return
			}
			body := make([]byte, n-4)
			if _, err := io.ReadFull(conn, body); err != nil {
				return
			}
			k, err := cancelkey.ParseCancelRequest(body)
			if err != nil {
				return
			}
			if c := p.lookupKey(k); c != nil {
				p.cancelClient(c)
			}
		}()
	}
}

// CancelSocketPath is where a process whose handover socket is path takes
// forwarded cancel requests: one per process, so that a chain of quick
// upgrades keeps every draining predecessor reachable.
func CancelSocketPath(path string) string {
	return strings.TrimSuffix(path, ".sock") + "." + strconv.Itoa(os.Getpid()) + ".cancel.sock"
}
