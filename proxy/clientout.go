package proxy

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

import (
	"sync"

	"github.com/muxpg/mux/evloop"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
)

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
