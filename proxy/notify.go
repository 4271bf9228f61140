package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
	"github.com/muxpg/mux/sqllex"
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

// notifier is the listening connection of one pool.
type notifier struct {
	p   *Proxy
	key poolKey
	log *zap.Logger

	mu     sync.Mutex // guards the fields below
	pl     *pool.Pool // a private pool of one server
	server *pool.Server
	subs   map[string]map[*clientConn]struct{}
	buf    []byte          // a partial message from the server
	acks   []chan struct{} // one per command sent, closed at its ReadyForQuery
	closed bool
}

// listenOp is one LISTEN or UNLISTEN of a client.
type listenOp struct {
	channel  string
	unlisten bool
	all      bool // UNLISTEN *
}

// parseListenQuery reports the LISTEN/UNLISTEN statements of a Query made
// of nothing else.
func parseListenQuery(sql []byte, opt sqllex.Options) ([]listenOp, bool) {
	var ops []listenOp
	ok := true
	n := 0
	sqllex.Scan(sql, opt, func(st sqllex.Statement) bool {
		n++
		kw := st.Keywords[0]
		if kw != sqllex.KwListen && kw != sqllex.KwUnlisten {
			ok = false
			return false
		}
		rest := bytes.TrimSpace(sql[st.Words[0].End:st.End])
		if kw == sqllex.KwUnlisten && bytes.Equal(rest, []byte("*")) {
			ops = append(ops, listenOp{unlisten: true, all: true})
			return true
		}
		name, good := identName(rest)
		if !good {
			ok = false
			return false
		}
		ops = append(ops, listenOp{channel: name, unlisten: kw == sqllex.KwUnlisten})
		return true
	})
	return ops, ok && n > 0
}

// notifierFor returns the pool's notifier, creating it.
func (p *Proxy) notifierFor(key poolKey, cfg pool.Config) *notifier {
	p.poolMu.Lock()
	defer p.poolMu.Unlock()
	if n := p.notifiers[key]; n != nil {
		return n
	}
	cfg.MaxSize, cfg.MinSize = 1, 0
	cfg.CheckQuery = ""
	n := &notifier{
		p: p, key: key,
		log:  p.log.Named("notify").With(zap.String("database", key.database), zap.String("user", key.user)),
		subs: map[string]map[*clientConn]struct{}{},
	}
	n.pl = pool.New(cfg, n.log)
	p.notifiers[key] = n
	return n
}

// apply carries out a client's LISTEN/UNLISTEN operations. It returns a
// channel closed once Postgres has run the commands it needed (nil if none):
// a client must not be told LISTEN is done before it is, or a NOTIFY
// committed just after could be missed.
func (n *notifier) apply(c *clientConn, ops []listenOp) <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	sent := len(n.acks)
	for _, op := range ops {
		switch {
		case op.all:
			for ch := range c.listens {
				n.unsubscribeLocked(c, ch)
			}
		case op.unlisten:
			n.unsubscribeLocked(c, op.channel)
		default:
			subs := n.subs[op.channel]
			if subs == nil {
				subs = map[*clientConn]struct{}{}
				n.subs[op.channel] = subs
				n.sendLocked("LISTEN ", op.channel)
			}
			subs[c] = struct{}{}
			c.listens[op.channel] = struct{}{}
		}
	}
	if len(n.acks) > sent {
		return n.acks[len(n.acks)-1]
	}
	return nil
}

// applyAndWait is apply, waiting (boundedly) for Postgres to confirm.
func (n *notifier) applyAndWait(c *clientConn, ops []listenOp) {
	if done := n.apply(c, ops); done != nil {
		t := time.NewTimer(10 * time.Second)
		defer t.Stop()
		select {
		case <-done:
		case <-t.C:
			n.log.Warn("listening connection did not confirm LISTEN in time")
		}
	}
}

func (n *notifier) unsubscribeLocked(c *clientConn, ch string) {
	delete(c.listens, ch)
	subs := n.subs[ch]
	if subs == nil {
		return
	}
	delete(subs, c)
	if len(subs) == 0 {
		delete(n.subs, ch)
		n.sendLocked("UNLISTEN ", ch)
	}
}

// forget drops every subscription of a leaving client.
func (n *notifier) forget(c *clientConn) {
	n.mu.Lock()
	defer n.mu.Unlock()
	for ch := range c.listens {
		n.unsubscribeLocked(c, ch)
	}
}

// sendLocked runs LISTEN/UNLISTEN on the listening connection, connecting
// it first if needed. n.mu held.
func (n *notifier) sendLocked(verb, channel string) {
	if n.closed {
		return
	}
	if n.server == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s, err := n.pl.Acquire(ctx)
		cancel()
		if err != nil {
			n.log.Warn("cannot open the listening connection; notifications will be missed until it works", zap.Error(err))
			go n.reconnect()
			return
		}
		n.server = s
		s.SetHandler(n)
	}
	q := append([]byte(verb), appendIdent(nil, channel)...)
	if err := n.server.Write(wire.AppendQuery(nil, string(q))); err != nil {
		n.log.Warn("listening connection failed", zap.Error(err))
		return
	}
	n.acks = append(n.acks, make(chan struct{}))
}

// ackAllLocked releases everyone waiting for a command (the connection is
// gone). n.mu held.
func (n *notifier) ackAllLocked() {
	for _, ch := range n.acks {
		close(ch)
	}
	n.acks = nil
}

// ServerData receives what the listening connection sends.
func (n *notifier) ServerData(s *pool.Server, data []byte, ev *pool.Events) {
	if ev.Closed != nil {
		n.mu.Lock()
		if n.server == s {
			n.server = nil
		}
		n.ackAllLocked()
		closed := n.closed
		n.mu.Unlock()
		n.pl.Release(s)
		if !closed {
			n.log.Warn("listening connection lost; reconnecting; notifications may have been missed", zap.Error(ev.Closed))
			go n.reconnect()
		}
		return
	}
	n.mu.Lock()
	n.buf = append(n.buf, data...)
	var notes [][]byte
	for len(n.buf) >= wire.HeaderLen {
		typ, l := wire.Header(n.buf)
		if len(n.buf) < 1+l {
			break
		}
		if typ == 'A' {
			notes = append(notes, append([]byte(nil), n.buf[:1+l]...))
		} else if typ == 'Z' && len(n.acks) > 0 {
			close(n.acks[0])
			n.acks = n.acks[1:]
		} else if typ == 'E' {
			sev, code := wire.ErrorSeverityAndCode(n.buf[wire.HeaderLen : 1+l])
			n.log.Warn("listening connection reported an error", zap.ByteString("severity", sev), zap.ByteString("sqlstate", code))
		}
		n.buf = n.buf[1+l:]
	}
	n.buf = append(n.buf[:0:0], n.buf...)
	n.mu.Unlock()
	for _, m := range notes {
		n.deliver(m)
	}
}

// deliver hands one NotificationResponse to every listening client.
func (n *notifier) deliver(msg []byte) {
	if len(msg) < 9 {
		return
	}
	body := msg[wire.HeaderLen:]
	pid := binary.BigEndian.Uint32(body[:4])
	ch, _, ok := cstring(body[4:])
	if !ok {
		return
	}
	binary.BigEndian.PutUint32(body[:4], n.p.clientPIDForBackend(pid))
	n.mu.Lock()
	subs := make([]*clientConn, 0, len(n.subs[string(ch)]))
	for c := range n.subs[string(ch)] {
		subs = append(subs, c)
	}
	n.mu.Unlock()
	for _, c := range subs {
		c.notify(msg)
	}
}

// reconnect reopens the listening connection and re-LISTENs every channel.
func (n *notifier) reconnect() {
	backoff := 100 * time.Millisecond
	for {
		n.mu.Lock()
		if n.closed || n.server != nil {
			n.mu.Unlock()
			return
		}
		n.mu.Unlock()
		time.Sleep(backoff)
		backoff = min(2*backoff, 5*time.Second)
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		s, err := n.pl.Acquire(ctx)
		cancel()
		if err != nil {
			continue
		}
		n.mu.Lock()
		if n.closed {
			n.mu.Unlock()
			n.pl.Release(s)
			return
		}
		n.server = s
		s.SetHandler(n)
		for ch := range n.subs {
			n.sendLocked("LISTEN ", ch)
		}
		n.mu.Unlock()
		n.log.Warn("listening connection restored; notifications sent while it was down were missed")
		return
	}
}

// close ends the listening connection.
func (n *notifier) close() {
	n.mu.Lock()
	n.closed = true
	s := n.server
	n.server = nil
	n.ackAllLocked()
	n.mu.Unlock()
	if s != nil {
		s.MarkBroken()
		n.pl.Release(s)
	}
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

// notify hands a notification to c: now if it is between transactions,
// else after its current one.
func (c *clientConn) notify(msg []byte) {
	c.mu.Lock()
	if c.gone {
		c.mu.Unlock()
		return
	}
	if c.server == nil && !c.checking && c.pending == 0 {
		c.wmu.Lock()
		c.mu.Unlock()
		_, _ = c.writeLocked(msg)
		c.wmu.Unlock()
		return
	}
	if len(c.notes) >= maxPendingNotifications {
		c.notes = c.notes[1:]
		c.logger().Warn("client too busy to take notifications: oldest dropped")
	}
	c.notes = append(c.notes, msg)
	c.mu.Unlock()
}

// takeNotes returns the notifications waiting for c, appended to out, and
// forgets them. c.mu held.
func (c *clientConn) takeNotes(out []byte) []byte {
	for _, m := range c.notes {
		out = append(out, m...)
	}
	c.notes = nil
	return out
}

// listenQuery handles a Query of LISTEN/UNLISTEN statements: applied now
// between transactions, at COMMIT inside one, passed to the server (which
// refuses it) in an aborted one. It reports false if the Query is not one.
// c.mu held.
func (c *clientConn) listenQuery(dst []byte, sql []byte, opt sqllex.Options) ([]byte, bool) {
	ops, ok := parseListenQuery(sql, opt)
	if !ok || c.txStatus == 'E' {
		return dst, false
	}
	if c.txStatus == 'I' {
		// Applied by processTracked once c.mu is released, before the
		// client gets its answer.
		c.listenApply = append(c.listenApply, ops...)
	} else {
		c.pendingListen = append(c.pendingListen, ops...)
	}
	var reply []byte
	for _, op := range ops {
		tag := "LISTEN"
		if op.unlisten {
			tag = "UNLISTEN"
		}
		reply = appendHeader(reply, 'C', len(tag)+1)
		reply = append(reply, tag...)
		reply = append(reply, 0)
	}
	c.push(expectation{msg: 'Q', synth: reply, synthZ: true})
	return dst, true
}

// endTransaction applies LISTENs made inside a transaction that committed,
// and drops them if it rolled back. c.mu held.
func (c *clientConn) endTransaction(committed bool) {
	if len(c.pendingListen) == 0 {
		return
	}
	ops := c.pendingListen
	c.pendingListen = nil
	if committed {
		c.p.notifierFor(poolKey{c.database, c.user}, c.pool.Config()).apply(c, ops)
	}
}
