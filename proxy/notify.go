package proxy

import (
	"context"
	"encoding/binary"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
)

// LISTEN/NOTIFY fan-out in transaction and statement mode.
//
// A client's LISTEN and UNLISTEN never run on a pooled server (the server
// moves on to other clients; its notifications would go to them or
// nowhere). mux keeps one connection per pool that LISTENs on every channel
// any of the pool's clients listens on, and hands each notification to each
// listening client: at once when the client is between transactions, else
// right after its current transaction, as Postgres itself does. LISTEN
// inside a transaction block takes effect at COMMIT and not at all after a
// ROLLBACK. The sender's backend PID is replaced by the mux-issued PID of
// the client that last used that backend, so clients recognise their own
// notifications.

// maxPendingNotifications bounds what waits for a busy client; beyond it
// the oldest are dropped (and logged).
const maxPendingNotifications = 10000

// notifyTimeout bounds connecting the listening connection, and waiting
// for Postgres to confirm a round of LISTEN/UNLISTEN on it.
const notifyTimeout = 10 * time.Second

// notifier is the listening connection of one pool.
//
// Its goroutine (run) alone connects, writes to and lets go of the
// listening connection. Everyone else only changes the subscriptions under
// mu, which is never held across I/O, and wakes run; a client that must
// not be answered before Postgres has run its LISTEN waits, outside every
// lock, for the round of run that takes its change. The connection's read
// goroutine hands notifications to each listener's noteBox and never waits
// for a client. Lock order: a client's mu before n.mu; n.mu is never held
// while taking a client's mu.
type notifier struct {
	p    *Proxy
	key  poolKey
	log  *zap.Logger
	pl   *pool.Pool         // a private pool of one server, used by run
	kick chan struct{}      // capacity 1: run has work
	ctx  context.Context    // ends when the notifier is closed
	stop context.CancelFunc // ends ctx

	mu    sync.Mutex // guards the fields below and every client's listens
	subs  map[string]map[*clientConn]struct{}
	boxes map[*clientConn]*noteBox // of every client that has listened, until it leaves
	// changed are channels whose subscribers came or went since run last
	// looked; applying are those of run's round in progress. A LISTEN on
	// one of them waits for the next round (next, made on demand).
	changed  map[string]struct{}
	applying map[string]struct{}
	next     chan struct{}
	server   *pool.Server  // the listening connection; cleared when it ends
	owed     int           // ReadyForQuery still owed for the round in progress
	settled  chan struct{} // closed when owed reaches 0 or the connection ends
	buf      []byte        // a partial message from the server
	closed   bool
}

// notifierFor returns the pool's notifier, creating it.
func (p *Proxy) notifierFor(key poolKey, cfg pool.Config) *notifier {
	p.poolMu.Lock()
	defer p.poolMu.Unlock()
	if n := p.notifiers[key]; n != nil {
		return n
	}
	cfg.MaxSize, cfg.MinSize, cfg.Reserve = 1, 0, 0 // it counts in the shared limits, as every server does
	cfg.CheckQuery = ""
	n := &notifier{
		p: p, key: key,
		log:   p.log.Named("notify").With(zap.String("database", key.database), zap.String("user", key.user)),
		kick:  make(chan struct{}, 1),
		subs:  map[string]map[*clientConn]struct{}{},
		boxes: map[*clientConn]*noteBox{},
	}
	n.ctx, n.stop = context.WithCancel(context.Background())
	cfg.ReadSplit = false // LISTEN needs the primary: no read sibling
	n.pl = pool.New(cfg, n.log)
	p.notifiers[key] = n
	go n.run()
	return n
}

// existingNotifier returns the pool's notifier if it has one.
func (p *Proxy) existingNotifier(key poolKey) *notifier {
	p.poolMu.Lock()
	defer p.poolMu.Unlock()
	return p.notifiers[key]
}

// apply carries out a client's LISTEN/UNLISTEN operations. It returns a
// channel closed once Postgres has run what they need (nil if nothing):
// a client must not be told LISTEN is done before it is, or a NOTIFY
// committed just after could be missed. An UNLISTEN takes effect at once
// (the client is no longer handed that channel's notifications). It does
// no I/O, so it may be called with the client's mu held.
func (n *notifier) apply(c *clientConn, ops []listenOp) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	wait := false
	for _, op := range ops {
		switch {
		case op.all:
			for ch := range c.ln.listens {
				n.unsubscribeLocked(c, ch)
			}
		case op.unlisten:
			n.unsubscribeLocked(c, op.channel)
		default:
			subs := n.subs[op.channel]
			if subs == nil {
				subs = map[*clientConn]struct{}{}
				n.subs[op.channel] = subs
				n.changedLocked(op.channel)
			}
			subs[c] = struct{}{}
			c.ln.listens[op.channel] = struct{}{}
			if n.boxes[c] == nil {
				n.boxes[c] = &noteBox{c: c}
			}
			_, changed := n.changed[op.channel]
			_, applying := n.applying[op.channel]
			wait = wait || changed || applying
		}
	}
	if !wait || n.closed {
		return nil
	}
	if n.next == nil {
		n.next = make(chan struct{})
	}
	n.wake()
	return n.next
}

// applyAndWait is apply, waiting (boundedly) for Postgres to confirm. No
// lock may be held.
func (n *notifier) applyAndWait(c *clientConn, ops []listenOp) {
	if done := n.apply(c, ops); done != nil {
		t := time.NewTimer(notifyTimeout)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			n.log.Warn("listening connection did not confirm LISTEN in time")
		}
	}
}

func (n *notifier) unsubscribeLocked(c *clientConn, ch string) {
	delete(c.ln.listens, ch)
	subs := n.subs[ch]
	if subs == nil {
		return
	}
	delete(subs, c)
	if len(subs) == 0 {
		delete(n.subs, ch)
		n.changedLocked(ch)
	}
}

// changedLocked tells run that channel ch gained its first subscriber or
// lost its last. n.mu held.
func (n *notifier) changedLocked(ch string) {
	if n.changed == nil {
		n.changed = map[string]struct{}{}
	}
	n.changed[ch] = struct{}{}
	n.wake()
}

// wake tells run there is work, without waiting.
func (n *notifier) wake() {
	select {
	case n.kick <- struct{}{}:
	default:
	}
}

// forget drops every subscription of a leaving client.
func (n *notifier) forget(c *clientConn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range c.ln.listens {
		n.unsubscribeLocked(c, ch)
	}
	delete(n.boxes, c)
}

// settleLocked ends the wait for the round in progress. n.mu held.
func (n *notifier) settleLocked() {
	n.owed = 0
	if n.settled != nil {
		close(n.settled)
		n.settled = nil
	}
}

// listenConn is the listening connection as run sees it; only run
// touches it.
type listenConn struct {
	s       *pool.Server
	on      map[string]struct{} // channels LISTENed on s
	backoff time.Duration       // before the next attempt to connect; 0 while none failed
	down    bool                // notifications were missed: a connection was lost or not made
}

// run owns the listening connection: each round it connects if channels
// are wanted and there is no connection, sends LISTEN/UNLISTEN for the
// channels whose subscribers changed, waits for Postgres to confirm them,
// and then lets the clients waiting for that round go on.
func (n *notifier) run() {
	lc := &listenConn{on: map[string]struct{}{}}
	defer func() {
		if lc.s != nil {
			lc.s.MarkBroken()
			n.pl.Release(lc.s)
		}
	}()
	var retry <-chan time.Time
	for {
		select {
		case <-n.ctx.Done():
			return
		case <-n.kick:
		case <-retry:
		}
		retry = nil
		if again := n.round(lc); again {
			retry = time.After(lc.backoff)
		}
	}
}

// round brings the listening connection in line with the subscriptions.
// It reports whether connecting failed and must be tried again.
func (n *notifier) round(lc *listenConn) (again bool) {
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return false
	}
	lost := lc.s != nil && n.server != lc.s
	wanted := len(n.subs) > 0
	n.mu.Unlock()
	if lost {
		n.pl.Release(lc.s)
		lc.s, lc.down = nil, wanted // with no listener, nothing was missed
		clear(lc.on)
	}
	if lc.s == nil && wanted && !n.connect(lc) {
		n.mu.Lock()
		next := n.next
		n.next = nil
		n.mu.Unlock()
		if next != nil {
			close(next) // nothing to wait for until it works
		}
		return true
	}

	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		return false
	}
	changed, next := n.changed, n.next
	n.changed, n.next = nil, nil
	var q []byte
	var listen, unlisten []string
	if lc.s != nil {
		for ch := range changed {
			_, want := n.subs[ch]
			_, on := lc.on[ch]
			switch {
			case want && !on:
				listen = append(listen, ch)
				q = appendListen(q, "LISTEN ", ch)
			case !want && on:
				unlisten = append(unlisten, ch)
				q = appendListen(q, "UNLISTEN ", ch)
			}
		}
	}
	var settled chan struct{}
	if q != nil {
		n.applying = changed
		n.owed = len(listen) + len(unlisten)
		settled = make(chan struct{})
		n.settled = settled
	}
	n.mu.Unlock()

	if q != nil && n.send(lc, q, settled) {
		for _, ch := range listen {
			lc.on[ch] = struct{}{}
		}
		for _, ch := range unlisten {
			delete(lc.on, ch)
		}
	}
	n.mu.Lock()
	n.applying = nil
	n.mu.Unlock()
	if next != nil {
		close(next)
	}
	return false
}

// appendListen appends a Query running verb on channel.
func appendListen(q []byte, verb, channel string) []byte {
	return wire.AppendQuery(q, verb+string(appendIdent(nil, channel)))
}

// connect opens the listening connection; every channel listened on is
// then to be LISTENed on it.
func (n *notifier) connect(lc *listenConn) bool {
	ctx, cancel := context.WithTimeout(n.ctx, notifyTimeout)
	s, err := n.pl.Acquire(ctx)
	cancel()
	if err != nil {
		if n.ctx.Err() == nil && !lc.down {
			n.log.Warn("cannot open the listening connection; notifications will be missed until it works", zap.Error(err))
		}
		lc.down = true
		lc.backoff = min(max(2*lc.backoff, 100*time.Millisecond), 5*time.Second)
		return false
	}
	s.SetHandler(n)
	n.mu.Lock()
	if n.closed {
		n.mu.Unlock()
		n.pl.Release(s)
		return false
	}
	n.server, n.buf = s, nil
	for ch := range n.subs {
		n.changedLocked(ch)
	}
	n.mu.Unlock()
	if lc.down {
		n.log.Warn("listening connection restored; notifications sent while it was down were missed")
	}
	lc.s, lc.down, lc.backoff = s, false, 0
	return true
}

// send writes a round's commands and waits for Postgres to confirm them.
// It reports false, the connection then being let go of, if it failed or
// did not answer in time.
func (n *notifier) send(lc *listenConn, q []byte, settled <-chan struct{}) bool {
	s := lc.s
	if err := s.Write(q); err != nil {
		n.log.Warn("listening connection failed", zap.Error(err))
		n.lose(s)
		return false
	}
	t := time.NewTimer(notifyTimeout)
	defer t.Stop()
	select {
	case <-settled:
		n.mu.Lock()
		ok := n.server == s
		n.mu.Unlock()
		return ok
	case <-t.C:
		n.log.Warn("listening connection did not confirm LISTEN in time; reconnecting")
		n.lose(s)
		return false
	case <-n.ctx.Done():
		return false
	}
}

// lose gives up on listening connection s: the next round lets go of it
// and connects again.
func (n *notifier) lose(s *pool.Server) {
	s.MarkBroken()
	n.mu.Lock()
	if n.server == s {
		n.server = nil
		n.buf = nil
	}
	n.settleLocked()
	n.mu.Unlock()
	n.wake()
}

// ServerData receives what the listening connection sends.
func (n *notifier) ServerData(s *pool.Server, data []byte, ev *pool.Events) {
	n.mu.Lock()
	if n.server != s {
		// A connection run has given up on.
		n.mu.Unlock()
		return
	}
	if ev.Closed != nil {
		n.server, n.buf = nil, nil
		n.settleLocked()
		closed := n.closed
		n.mu.Unlock()
		if !closed {
			n.log.Warn("listening connection lost; reconnecting; notifications may have been missed", zap.Error(ev.Closed))
			n.wake()
		}
		return
	}
	type delivery struct {
		msg   []byte
		boxes []*noteBox // of the channel's listeners
	}
	var out []delivery
	n.buf = append(n.buf, data...)
	for len(n.buf) >= wire.HeaderLen {
		typ, l := wire.Header(n.buf)
		if len(n.buf) < 1+l {
			break
		}
		switch typ {
		case 'A':
			msg := n.buf[:1+l]
			if len(msg) < 9 {
				break
			}
			ch, _, ok := wire.CString(msg[wire.HeaderLen+4:])
			if subs := n.subs[string(ch)]; ok && len(subs) > 0 {
				d := delivery{msg: append([]byte(nil), msg...), boxes: make([]*noteBox, 0, len(subs))}
				for c := range subs {
					d.boxes = append(d.boxes, n.boxes[c])
				}
				out = append(out, d)
			}
		case 'Z':
			if n.owed > 0 {
				if n.owed--; n.owed == 0 {
					n.settleLocked()
				}
			}
		case 'E':
			sev, code := wire.ErrorSeverityAndCode(n.buf[wire.HeaderLen : 1+l])
			n.log.Warn("listening connection reported an error", zap.ByteString("severity", sev), zap.ByteString("sqlstate", code))
		}
		n.buf = n.buf[1+l:]
	}
	n.buf = append(n.buf[:0:0], n.buf...)
	n.mu.Unlock()
	for _, d := range out {
		body := d.msg[wire.HeaderLen:]
		binary.BigEndian.PutUint32(body[:4], n.p.clientPIDForBackend(binary.BigEndian.Uint32(body[:4])))
		for _, b := range d.boxes {
			b.put(d.msg)
		}
	}
}

// close ends the listening connection (run lets go of it as it returns).
func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	n.settleLocked()
	next := n.next
	n.next = nil
	n.mu.Unlock()
	if next != nil {
		close(next)
	}
	n.stop()
	n.pl.Close()
}

// clientPIDForBackend maps a backend PID to the mux-issued PID of the
// client that used that backend last (or 0).
func (p *Proxy) clientPIDForBackend(pid uint32) uint32 {
	p.keysMu.Lock()
	defer p.keysMu.Unlock()
	var best *clientConn
	for _, c := range p.keys {
		if c.lastBackend.Load() == pid && (best == nil || c.attachSeq.Load() > best.attachSeq.Load()) {
			best = c
		}
	}
	if best == nil {
		return 0
	}
	return best.key.pid
}
