package proxy

// The server-to-client half of a session: relaying replies and releasing
// the server at a clean boundary.

import (
	"time"

	"go.uber.org/zap"

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
		out, bp = c.trackServerData(s, data)
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
		c.trk.queue, c.trk.qhead, c.trk.sskip = c.trk.queue[:0], 0, 0
	}
	// Take the write lock before letting go of mu: replies reach the
	// client in the order mu saw them (see trackServerData).
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
		c.pool.Release(s)
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
