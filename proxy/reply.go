package proxy

// The server-to-client half of a session, in the order a reply takes it:
// the server's reader (its loop, or its goroutine; pool/server.go) hands a
// batch of replies to ServerData, the session core decides what becomes
// of the server (session.Core.Decide), the replies are written to the
// client, or queued when it cannot take them now (sendOrdered, below), and
// the decision is carried out (carryOut: release, state check, close).

import (
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/muxpg/mux/evloop"
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
	"github.com/muxpg/mux/session"
)

// ServerData relays what the session's server sent to the client, and
// releases the server at a clean boundary. It runs on the server's reader:
// its goroutine, or the event loop that polls it.
func (c *clientConn) ServerData(s *pool.Server, data []byte, ev *pool.Events) {
	onLoop := s.Loop() != nil
	if ev.Closed != nil && onLoop {
		go c.serverClosed(s, ev.Closed) // writes to the client may block
		return
	}
	if ev.Closed != nil {
		c.serverClosed(s, ev.Closed)
		return
	}
	c.serverData(s, data, ev, onLoop)
}

// serverClosed ends the session whose server's connection ended.
func (c *clientConn) serverClosed(s *pool.Server, closed error) {
	c.mu.Lock()
	mine := c.server == s
	if mine {
		c.server = nil
		if c.rw.in(rwTrial) {
			c.rw.end()
		}
	}
	c.mu.Unlock()
	if mine {
		c.logger().Info("server connection lost", zap.Uint64("server_id", s.ID), zap.Error(closed))
		c.sendError(wire.Fatal(wire.CodeConnectionFailure, "server connection closed unexpectedly"))
		c.terminate()
		c.pool.Release(s)
	}
}

// serverData relays one batch of replies; on the loop (onLoop) it never
// blocks.
func (c *clientConn) serverData(s *pool.Server, data []byte, ev *pool.Events, onLoop bool) {
	c.mu.Lock()
	if c.server != s {
		// The client let go of this server (it is leaving): nothing more
		// is for it.
		c.mu.Unlock()
		return
	}
	out, bp := data, (*[]byte)(nil)
	if c.track {
		out, bp = c.trk.ServerData(session.ServerOf(s), data, c)
	}
	if ev.Params {
		c.pin.stateDirty = c.pin.stateDirty || c.track
		c.want.follow(s)
	}
	if ev.Ready > 0 {
		c.finishedQueries(c.core.Answered(ev.Ready, ev.Status, time.Now()), ev.Ready)
	}
	if ev.ErrCode != "" {
		c.stats.errors.Add(1)
		c.stats.obs.ErrorSent(ev.ErrCode)
	}
	d := c.core.Decide(session.Reply{Ready: ev.Ready, Fatal: ev.Fatal}, c.needsStateCheck())
	switch d {
	case session.Release:
		if c.lc != nil && c.lc.soutBusy.Load() {
			// Client bytes for this server still wait to be written
			// (a COPY the server refused mid-stream): not reusable.
			s.MarkBroken()
		}
	case session.RefuseTransaction:
		// Refused before it sees ReadyForQuery 'T', the client cannot send
		// anything into the transaction.
		if endsWithReady(out) {
			out = out[:len(out)-6]
		}
	case session.Check:
		c.pin.checking = true
		c.pin.checkDone = make(chan struct{})
	}
	rerun := false
	if c.rw.in(rwTrial) {
		out, bp, rerun = c.trialReply(out, bp, ev, d) // rwsplit.go
	}
	if len(c.ln.notes) > 0 && ev.Ready > 0 && c.core.Status() == 'I' && c.core.Pending() == 0 && d != session.Close {
		// Notifications held during the transaction go out after it.
		if bp == nil {
			bp = wire.GetBuf(len(out) + 1024)
			out = append((*bp)[:0], out...)
		}
		out = c.takeNotes(out)
		*bp = out
	}
	if d.Detaches() {
		c.server = nil
		c.trk.Reset()
	}
	// Take the write lock before letting go of mu: replies reach the
	// client in the order mu saw them (see Tracker.ServerData).
	var werr error
	if len(out) > 0 {
		// On the loop what the client does not take now waits in its
		// output queue, and s (unless let go of now) is paused meanwhile.
		var held *pool.Server
		if !d.Detaches() && d != session.Check {
			held = s
		}
		werr = c.sendOrdered(out, held, onLoop)
		c.stats.bytesOut.Add(int64(len(out)))
	} else {
		c.mu.Unlock()
	}
	if bp != nil {
		wire.PutBuf(bp)
	}
	c.carryOut(s, d, werr, onLoop)
	if rerun {
		go c.rerun()
	}
}

// carryOut does what serverData decided for server s; werr is the error
// writing the replies to the client, if any.
func (c *clientConn) carryOut(s *pool.Server, d session.Decision, werr error, onLoop bool) {
	switch {
	case d == session.RefuseTransaction && onLoop:
		go c.refuseTransaction(s) // sendError and ROLLBACK wait: not on the loop
	case d == session.Check:
		if werr != nil {
			c.terminate()
		}
		go c.checkState(s)
	case d == session.Close:
		c.terminate()
		c.pool.Release(s)
	case d == session.RefuseTransaction:
		c.refuseTransaction(s)
	case d == session.Release:
		c.releaseServer(s)
		if werr != nil {
			c.terminate()
		} else {
			c.armIdleTimeout()
		}
	case werr != nil:
		// The client is gone mid-transaction: the server's state is
		// unknown to anyone who could finish it.
		c.mu.Lock()
		mine := c.server == s
		if mine {
			c.server = nil
		}
		c.mu.Unlock()
		c.terminate()
		if mine {
			s.MarkBroken()
			c.pool.Release(s)
		}
	case d == session.Idle:
		c.armIdleTimeout()
	}
}

// refuseTransaction ends a statement-mode client that opened a
// transaction block.
func (c *clientConn) refuseTransaction(s *pool.Server) {
	c.sendError(wire.Fatal(wire.CodeFeatureNotSupported, "transaction blocks are not allowed in statement pooling mode"))
	c.terminate()
	go c.rollbackAndRelease(s)
}

// finishedQueries accounts n answered queries, and the transaction if it
// ended. c.mu must be held.
func (c *clientConn) finishedQueries(t session.Timed, n int) {
	c.stats.queries.Add(int64(n))
	c.stats.queryUs.Add(t.Query.Microseconds())
	c.stats.obs.Query(t.Query)
	if c.core.Pending() > 0 {
		c.armQueryTimeout() // the next pipelined query starts now
	} else if c.qtimer != nil {
		c.qtimer.Stop()
	}
	if t.XactEnded {
		c.stats.xacts.Add(1)
		c.stats.xactUs.Add(t.Xact.Microseconds())
		c.stats.obs.Transaction(t.Xact)
	}
}

// endsWithReady reports whether data ends with a ReadyForQuery message.
func endsWithReady(data []byte) bool {
	n := len(data)
	return n >= 6 && data[n-6] == 'Z' && data[n-5] == 0 && data[n-4] == 0 && data[n-3] == 0 && data[n-2] == 5
}

// Writing to a client from an event loop, which must never wait.
//
// Replies reach a client in the order the writers saw the session under
// c.mu: each writer takes wmu (the socket's write lock) before it lets go
// of c.mu. A loop cannot wait for wmu (a goroutine may hold it for up to
// client_write_timeout while a slow client drains), nor for the socket. So
// a loop that does not get wmu at once, or whose write the socket does not
// take whole, or that finds replies already waiting, appends its bytes to
// the client's output queue instead, and a goroutine (drain) writes the
// queue under wmu. Whoever holds wmu writes the queue before its own bytes
// (writeLocked), so the order holds. While anything waits there, the
// client is "flushing": its loop does not read it, and the server whose
// reply waits is paused, so a slow client costs one read of each at most
// (back-pressure), and unrelated clients nothing.

// outQueue is a client's queued output. Guarded by its mu, a leaf lock
// held for no I/O.
type outQueue struct {
	mu       sync.Mutex
	q        *[]byte        // bytes to write, in order; nil if none
	draining bool           // a drain goroutine runs
	dead     bool           // a write failed: the client is ending, drop the rest
	paused   []*pool.Server // servers paused until the queue is written
}

// sendOrdered writes b to the client after everything written or queued
// before it. c.mu must be held; sendOrdered releases it. On a loop
// (onLoop) it never blocks: what cannot be written now is queued, and s,
// if not nil, is the server whose reply b is, paused until it is written
// (onLoop must then be s's loop).
func (c *clientConn) sendOrdered(b []byte, s *pool.Server, onLoop bool) error {
	if !onLoop || c.lc == nil {
		c.wmu.Lock()
		c.mu.Unlock()
		c.armWriteDeadline()
		_, err := c.writeLocked(b)
		c.wmu.Unlock()
		return err
	}
	if !c.wmu.TryLock() {
		c.queueOut(b, s)
		c.mu.Unlock()
		return nil
	}
	c.mu.Unlock()
	return c.sendHeld(b, s)
}

// sendHeld is sendOrdered's write with wmu held (and released here).
func (c *clientConn) sendHeld(b []byte, s *pool.Server) error {
	lc := c.lc
	lc.out.mu.Lock()
	queued := lc.out.q != nil || lc.out.dead
	lc.out.mu.Unlock()
	n := 0
	if !queued && c.in.raw != nil {
		var err error
		if n, err = c.tryWrite(b); err != nil {
			c.wmu.Unlock()
			return err
		}
	}
	if n < len(b) {
		// Queued before wmu is let go: no other writer can come between.
		c.queueOut(b[n:], s)
	}
	c.wmu.Unlock()
	return nil
}

// tryWrite writes what the client's socket takes now. wmu held.
func (c *clientConn) tryWrite(b []byte) (int, error) {
	lc := c.lc
	lc.wb, lc.wn, lc.werr = b, 0, nil
	cerr := c.in.raw.Control(lc.writeStep)
	n, err := lc.wn, lc.werr
	lc.wb, lc.werr = nil, nil
	if err == nil {
		err = cerr
	}
	return n, err
}

// queueOut appends b to the client's output queue, pausing s (if not nil)
// until it is written, and starts a drain goroutine if none runs.
func (c *clientConn) queueOut(b []byte, s *pool.Server) {
	lc := c.lc
	lc.out.mu.Lock()
	defer lc.out.mu.Unlock()
	if lc.out.dead {
		return
	}
	if lc.out.q == nil {
		lc.out.q = wire.GetBuf(len(b))
		*lc.out.q = (*lc.out.q)[:0]
	}
	*lc.out.q = append(*lc.out.q, b...)
	lc.flushing.Store(true)
	if s != nil && s.Loop() != nil && !s.Paused() {
		s.Pause()
		lc.out.paused = append(lc.out.paused, s)
	}
	if !lc.out.draining {
		lc.out.draining = true
		go c.drain()
	}
}

// drain writes the output queue under wmu, bounded by
// client_write_timeout, until it is empty; then the client is read again
// and the paused servers resumed.
func (c *clientConn) drain() {
	lc := c.lc
	c.wmu.Lock()
	for {
		lc.out.mu.Lock()
		q := lc.out.q
		lc.out.q = nil
		if q == nil {
			paused := lc.out.paused
			lc.out.paused = nil
			lc.out.draining = false
			lc.flushing.Store(false) // before wmu is let go
			lc.out.mu.Unlock()
			c.wmu.Unlock()
			for _, s := range paused {
				s.Loop().(*evloop.Loop).ResumeServer(s)
			}
			if c.loopDriven() {
				lc.loop.Post(c, evloop.Event{Kind: evFlushed})
			}
			return
		}
		lc.out.mu.Unlock()
		c.armWriteDeadline()
		_, err := c.writeRaw(*q)
		wire.PutBuf(q)
		if err != nil {
			lc.out.mu.Lock()
			lc.out.dead = true
			if lc.out.q != nil {
				wire.PutBuf(lc.out.q)
				lc.out.q = nil
			}
			lc.out.mu.Unlock()
			c.terminate()
		}
	}
}

// writeQueued writes what the output queue holds, before a goroutine
// writer's own bytes. wmu held.
func (c *clientConn) writeQueued() error {
	lc := c.lc
	for {
		lc.out.mu.Lock()
		q := lc.out.q
		lc.out.q = nil
		lc.out.mu.Unlock()
		if q == nil {
			return nil
		}
		_, err := c.writeRaw(*q)
		wire.PutBuf(q)
		if err != nil {
			return err
		}
	}
}
