package proxy

// Client-side timers: write deadline, query_timeout, idle timeouts.

import (
	"time"

	"go.uber.org/zap"
)

// armWriteDeadline keeps a write deadline of about client_write_timeout on
// the client connection. Moving a deadline is not free (the runtime may
// wake its network poller), so it is moved only once half of it is used
// up: a stalled client is cut between half and all of the timeout.
// Called with wmu held.
func (c *clientConn) armWriteDeadline() {
	d := c.p.config().ClientWriteTimeout.D()
	if d <= 0 {
		return
	}
	now := time.Now()
	if time.Duration(c.writeDeadline-now.UnixNano()) > d/2 {
		return
	}
	dl := now.Add(d)
	c.writeDeadline = dl.UnixNano()
	_ = c.conn.SetWriteDeadline(dl)
}

// armQueryTimeout starts query_timeout for the query beginning now. c.mu
// must be held.
func (c *clientConn) armQueryTimeout() {
	d := c.timeouts().QueryTimeout.D()
	if d <= 0 {
		return
	}
	if c.qtimer == nil {
		c.qtimer = time.AfterFunc(d, c.queryTimedOut)
		return
	}
	c.qtimer.Reset(d)
}

// queryTimedOut cancels the running query (57014 for the client); the
// server stays with the client, as after any cancel.
func (c *clientConn) queryTimedOut() {
	d := c.timeouts().QueryTimeout.D()
	c.mu.Lock()
	overdue := c.server != nil && c.core.Pending() > 0 && time.Since(c.core.QueryStart()) >= d-time.Millisecond
	c.mu.Unlock()
	if overdue {
		c.logger().Info("query_timeout: cancelling query", zap.Duration("query_timeout", d))
		c.p.cancelClient(c)
	}
}

// armIdleTimeout sets the client read deadline for its state: between
// transactions client_idle_timeout, inside one idle_transaction_timeout.
// SetReadDeadline may be called from any goroutine.
func (c *clientConn) armIdleTimeout() {
	cfg := c.timeouts() // the user's own, else the global ones (reuse.go)
	if cfg.IdleTransactionTimeout <= 0 && cfg.ClientIdleTimeout <= 0 {
		return
	}
	c.mu.Lock()
	attached := c.server != nil
	var d time.Duration
	switch {
	case attached && c.core.Pending() > 0: // busy: the server has the next move
	case c.inTransaction():
		d = cfg.IdleTransactionTimeout.D()
	default: // between transactions, with a server (session mode, pinned) or not
		d = cfg.ClientIdleTimeout.D()
	}
	var dl time.Time
	if d > 0 {
		dl = time.Now().Add(d)
	}
	c.setIdleDeadline(dl)
	c.mu.Unlock()
}

// inTransaction reports a client whose server is in a transaction or an
// unfinished extended-protocol batch. c.mu must be held.
func (c *clientConn) inTransaction() bool {
	return c.server != nil && (c.core.Status() != 'I' || c.core.Dirty())
}

// setIdleDeadline sets the client's read deadline. c.mu must be held, so
// that the deadline always matches the state it was computed from (the
// client goroutine attaching a server and the server goroutine releasing
// one both set it).
func (c *clientConn) setIdleDeadline(dl time.Time) {
	c.park.idleDeadline = dl
	_ = c.conn.SetReadDeadline(dl)
}
