package proxy

import (
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
	"github.com/muxpg/mux/session"
)

// The end of a session: the error to the client, and what becomes of the
// server it held.

// rollbackAndRelease ends an open transaction on a server the client left
// and returns it to the pool, or closes it if that fails.
func (c *clientConn) rollbackAndRelease(s *pool.Server) {
	if _, err := execReset(s, "ROLLBACK"); err != nil {
		s.MarkBroken()
	}
	c.pool.Release(s)
}

// terminate closes the client connection; its goroutine then finishes.
func (c *clientConn) terminate() {
	c.mu.Lock()
	c.gone = true
	c.mu.Unlock()
	_ = c.conn.Close()
	c.wake()
}

// finish ends a session: reports err to the client if it is one mux can
// phrase, and returns or closes the server the client held.
func (c *clientConn) finish(err error) {
	c.mu.Lock()
	if c.qtimer != nil {
		c.qtimer.Stop()
	}
	c.mu.Unlock()
	if c.ln.listens != nil {
		if n := c.p.existingNotifier(poolKey{c.database, c.user}); n != nil {
			n.forget(c)
		}
	}
	if c.in.bp != nil {
		wire.PutBuf(c.in.bp)
		c.in.bp = nil
	}
	c.logDisconnect(c.sendEndError(err))
	c.mu.Lock()
	for c.pin.checking || c.rw.in(rwRerun) {
		c.waitCheck()
		c.waitRerun()
	}
	s := c.server
	c.server = nil
	c.gone = true
	clean := c.core.Clean()
	status := c.core.Status()
	pinned, loaded := c.pin.reason != "", c.pin.loaded
	c.mu.Unlock()
	if s == nil {
		return
	}
	s.SetHandler(nil)
	if !clean || loaded {
		// Mid-query or mid-pipeline the server's state is unknown; after
		// LOAD it can never be reset.
		s.MarkBroken()
		c.pool.Release(s)
		return
	}
	var q string
	switch {
	case status != 'I':
		q = "ROLLBACK"
	case c.core.Mode == session.Session:
		q = c.p.config().ServerResetQuery
	}
	if q != "" {
		if _, err := execReset(s, q); err != nil {
			s.MarkBroken()
		} else if c.core.Mode == session.Session {
			// DISCARD ALL / RESET ALL put every setting back to its default.
			s.Applied = map[string]string{}
		}
	}
	if pinned && !s.Broken() {
		// A pinned client's state (locks, temporary tables, …) must not
		// reach the next client.
		c.resetServer(s)
	}
	c.pool.Release(s)
}
