package proxy

import (
	"bytes"
	"sync"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/session"
	"github.com/muxpg/mux/sqllex"
	"go.uber.org/zap"
)

// The client's side of LISTEN (the pool's listening connection is
// notify.go): LISTEN/UNLISTEN statements in a Query, applied between
// transactions or at COMMIT, and the notifications handed to the client.

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
		name, good := session.IdentName(rest)
		if !good {
			ok = false
			return false
		}
		ops = append(ops, listenOp{channel: name, unlisten: kw == sqllex.KwUnlisten})
		return true
	})
	return ops, ok && n > 0
}

// listenQuery handles a Query of LISTEN/UNLISTEN statements: applied now
// between transactions, at COMMIT inside one, passed to the server (which
// refuses it) in an aborted one. It returns mux's reply (the
// CommandCompletes; a ReadyForQuery follows), or false if the Query is not
// one. c.mu held.
func (c *clientConn) listenQuery(sql []byte, opt sqllex.Options) ([]byte, bool) {
	ops, ok := parseListenQuery(sql, opt)
	if !ok || c.core.Status() == 'E' {
		return nil, false
	}
	if c.core.Status() == 'I' {
		// Applied by processTracked once c.mu is released, before the
		// client gets its answer.
		c.ln.apply = append(c.ln.apply, ops...)
	} else {
		c.ln.pending = append(c.ln.pending, ops...)
	}
	var reply []byte
	for _, op := range ops {
		tag := "LISTEN"
		if op.unlisten {
			tag = "UNLISTEN"
		}
		reply = wire.AppendHeader(reply, 'C', len(tag)+1)
		reply = append(reply, tag...)
		reply = append(reply, 0)
	}
	return reply, true
}

// endTransaction applies LISTENs made inside a transaction that committed,
// and drops them if it rolled back. c.mu held.
func (c *clientConn) endTransaction(committed bool) {
	if len(c.ln.pending) == 0 {
		return
	}
	ops := c.ln.pending
	c.ln.pending = nil
	if committed {
		// apply does no I/O: Postgres runs the LISTENs shortly after.
		c.p.notifierFor(poolKey{c.database, c.user}, c.pool.Config()).apply(c, ops)
	}
}

// noteBox takes a listening client's notifications from the listening
// connection's read goroutine, which must never wait for the client: not
// for its mu (held while a reply to it waits for wmu), nor for its socket.
// A flushNotes goroutine, started when notifications arrive, takes them on.
type noteBox struct {
	c *clientConn

	mu       sync.Mutex // guards the fields below; held for no I/O
	in       [][]byte
	flushing bool // a flushNotes goroutine is running
}

// put hands notification msg to the client.
func (b *noteBox) put(msg []byte) {
	b.mu.Lock()
	dropped := len(b.in) >= maxPendingNotifications
	if dropped {
		b.in = b.in[1:]
	}
	b.in = append(b.in, msg)
	start := !b.flushing
	b.flushing = true
	b.mu.Unlock()
	if dropped {
		b.c.logger().Warn("client too busy to take notifications: oldest dropped")
	}
	if start {
		go b.c.flushNotes(b)
	}
}

// flushNotes takes the notifications in b: written at once to a client
// between transactions, under client_write_timeout (one that cannot take
// them in time is closed); kept in c.ln.notes for the end of the transaction
// otherwise (ServerData).
func (c *clientConn) flushNotes(b *noteBox) {
	for {
		b.mu.Lock()
		in := b.in
		b.in = nil
		if len(in) == 0 {
			b.flushing = false
			b.mu.Unlock()
			return
		}
		b.mu.Unlock()

		c.mu.Lock()
		if c.gone {
			c.mu.Unlock()
			continue
		}
		c.ln.notes = append(c.ln.notes, in...)
		if over := len(c.ln.notes) - maxPendingNotifications; over > 0 {
			c.ln.notes = c.ln.notes[over:]
			c.logger().Warn("client too busy to take notifications: oldest dropped")
		}
		if !c.betweenTransactions() {
			c.mu.Unlock()
			continue
		}
		out := c.takeNotes(nil)
		c.wmu.Lock()
		c.mu.Unlock()
		c.armWriteDeadline()
		_, err := c.writeLocked(out)
		c.wmu.Unlock()
		if err != nil {
			c.logger().Info("closing client: writing notifications failed", zap.Error(err))
			c.terminate()
		}
	}
}

// betweenTransactions reports whether a notification may go to c now: it
// holds no server and owes no reply. c.mu held.
func (c *clientConn) betweenTransactions() bool {
	return c.server == nil && !c.pin.checking && c.core.Pending() == 0
}

// takeNotes returns the notifications waiting for c, appended to out, and
// forgets them. c.mu held.
func (c *clientConn) takeNotes(out []byte) []byte {
	for _, m := range c.ln.notes {
		out = append(out, m...)
	}
	c.ln.notes = nil
	return out
}
