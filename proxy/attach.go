package proxy

// Taking a server for a client: the gate, the pool wait, and bringing the
// server's settings in line with the client's.

import (
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
)

// holdServer returns the client's server, attaching one if it holds none,
// with c.mu locked.
func (c *clientConn) holdServer() (*pool.Server, error) {
	for {
		c.mu.Lock()
		if c.onLoop() {
			if c.pin.checking {
				c.mu.Unlock()
				return nil, errOffload // waitCheck blocks
			}
		} else {
			c.waitCheck()
		}
		if s := c.server; s != nil {
			return s, nil
		}
		c.mu.Unlock()
		if c.onLoop() {
			if err := c.loopAttach(); err != nil {
				return nil, err
			}
			continue
		}
		if _, err := c.attach(); err != nil {
			return nil, err
		}
	}
}

// attach takes a server from the pool for this client and brings its
// settings in line with the client's.
func (c *clientConn) attach() (*pool.Server, error) {
	if cfg := c.p.config(); cfg.ClientIdleTimeout > 0 || cfg.IdleTransactionTimeout > 0 {
		c.mu.Lock()
		c.setIdleDeadline(time.Time{})
		c.mu.Unlock()
	}
	start := time.Now()
	ticket, err := c.admit() // waits while the database is PAUSEd (admin.go)
	if err != nil {
		return nil, err
	}
	defer c.p.admin.done(ticket)
	var s *pool.Server
	turn := c.lc != nil && c.lc.turn
	if !turn {
		s = c.pool.TryAcquire()
	}
	if s == nil {
		// No idle server at hand: wait (bounded by query_wait_timeout).
		c.mu.Lock()
		c.waiting = true
		c.mu.Unlock()
		var err error
		if turn {
			// A loop's wait was handed free capacity: connect.
			c.lc.turn = false
			start = c.lc.since
			var deadline time.Time
			if d := c.p.config().QueryWaitTimeout.D(); d > 0 {
				deadline = start.Add(d)
			}
			s, err = c.pool.AcquireTurn(deadline)
		} else {
			s, err = c.pool.AcquireTimeout(c.p.config().QueryWaitTimeout.D())
		}
		c.mu.Lock()
		c.waiting = false
		c.mu.Unlock()
		if err != nil {
			c.logger().Info("no server for client", zap.Error(err))
			return nil, c.poolError(err)
		}
	}
	return c.adopt(s, start)
}

// adopt makes s, just taken from the pool, the client's server, first
// bringing its settings in line with the client's (one query, which
// blocks; loopAdopt runs it off the loop). start is when the client began
// to wait for it.
func (c *clientConn) adopt(s *pool.Server, start time.Time) (*pool.Server, error) {
	waited := time.Since(start)
	c.stats.waits.Add(1)
	c.stats.waitUs.Add(waited.Microseconds())
	c.stats.obs.PoolWait(waited)
	c.mu.Lock()
	want, gone := c.want, c.gone
	c.mu.Unlock()
	if gone {
		// Terminated while waiting (KILL, shutdown): what it sent must not run.
		c.pool.Release(s)
		return nil, wire.Fatal(wire.CodeAdminShutdown, "terminating connection due to administrator command")
	}
	if q := syncSQL(s, want, c.extra); q != "" {
		if _, err := execReset(s, q); err != nil {
			c.pool.Release(s)
			var we *wire.Error
			if !errors.As(err, &we) {
				return nil, wire.Fatal(wire.CodeConnectionFailure, "server connection lost while applying settings: %v", err)
			}
			e := *we
			e.Severity = "FATAL"
			return nil, &e
		}
		s.Applied = make(map[string]string, len(c.extra))
		for _, e := range c.extra {
			s.Applied[e.Name] = e.Value
		}
		c.mu.Lock()
		c.want.follow(s)
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.server = s
	c.core.Attached()
	c.park.idleSeen = false
	c.trk.queue, c.trk.qhead, c.trk.sskip = c.trk.queue[:0], 0, 0
	c.mu.Unlock()
	c.lastBackend.Store(s.KeyPID)
	c.attachSeq.Store(c.p.attachSeq.Add(1))
	s.SetHandler(c)
	return s, nil
}
