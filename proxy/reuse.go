package proxy

import (
	"time"

	"go.uber.org/zap"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
	"github.com/muxpg/mux/session"
)

// PgBouncer 1.25's per-user timeouts, transaction_timeout,
// server_fast_close and cancel_wait_timeout. The sweeper (park.go) asks
// each client, every sweepEvery, whether one of the last two ends it; so
// they act within half a second, as PgBouncer's janitor does.

// userTimeouts are the client timeouts in force, resolved once per
// snapshot: users with their own timeouts ([users.NAME]) and everyone else.
type userTimeouts struct {
	global config.UserTimeouts
	users  map[string]config.UserTimeouts // only users with one of their own
	// waits: some user or database has its own query_wait_timeout.
	waits bool
}

func newUserTimeouts(cfg *config.Config) userTimeouts {
	t := userTimeouts{global: cfg.Resolved(config.UserTimeouts{})}
	for _, db := range cfg.Databases {
		t.waits = t.waits || db.QueryWaitTimeout != nil
	}
	for name, u := range cfg.Users {
		t.waits = t.waits || u.QueryWaitTimeout != nil
		if u.UserTimeouts == (config.UserTimeouts{}) {
			continue
		}
		if t.users == nil {
			t.users = map[string]config.UserTimeouts{}
		}
		t.users[name] = cfg.Resolved(u.UserTimeouts)
	}
	return t
}

// of returns user's timeouts.
func (t *userTimeouts) of(user string) config.UserTimeouts {
	if len(t.users) > 0 {
		if u, ok := t.users[user]; ok {
			return u
		}
	}
	return t.global
}

// timeouts returns the client's timeouts under the configuration in force.
func (c *clientConn) timeouts() config.UserTimeouts {
	return c.p.snapshot().timeouts.of(c.user)
}

// queryWaitTimeout returns the client's query_wait_timeout: its user's,
// else its database's, else the global one.
func (c *clientConn) queryWaitTimeout() time.Duration {
	s := c.p.snapshot()
	if !s.timeouts.waits {
		return s.cfg.QueryWaitTimeout.D()
	}
	return s.cfg.QueryWaitTimeoutFor(c.database, c.user)
}

// idleTimeoutsOn reports whether client_idle_timeout or
// idle_transaction_timeout applies to the client.
func (c *clientConn) idleTimeoutsOn() bool {
	t := c.timeouts()
	return t.ClientIdleTimeout > 0 || t.IdleTransactionTimeout > 0
}

// sweepEnd is what the sweeper found ends a client.
type sweepEnd uint8

const (
	endNone        sweepEnd = iota
	endXactTimeout          // transaction_timeout passed
	endFastClose            // server_fast_close: maybe; its server is checked unlocked
)

// dueLocked reports whether the client's session is to end now. c.mu must
// be held. For endFastClose it returns the server to ask (without c.mu:
// the pool's lock is never taken under a client's) whether it is due to
// close.
func (c *clientConn) dueLocked(s *snapshot, now time.Time) (sweepEnd, *pool.Server) {
	if c.server == nil || c.gone {
		return endNone, nil
	}
	busy := c.core.Pending() > 0 || c.core.Dirty() || c.core.Status() != 'I'
	if busy {
		if d := s.timeouts.of(c.user).TransactionTimeout.D(); d > 0 && now.Sub(c.core.XactStart()) >= d {
			return endXactTimeout, nil
		}
		return endNone, nil
	}
	if s.cfg.ServerFastClose && c.core.Mode == session.Session && !c.pin.checking {
		return endFastClose, c.server
	}
	return endNone, nil
}

// endDue ends a client dueLocked named.
func (c *clientConn) endDue(why sweepEnd, srv *pool.Server) {
	switch why {
	case endXactTimeout:
		d := c.timeouts().TransactionTimeout.D()
		c.logger().Info("transaction_timeout: closing client", zap.Duration("transaction_timeout", d))
		go c.closeWith(wire.Fatal(wire.CodeTransactionTimeout,
			"terminating connection due to transaction timeout (transaction_timeout)"))
	case endFastClose:
		if !srv.CloseNeeded() {
			return
		}
		c.mu.Lock()
		still := c.server == srv && !c.gone && c.core.Clean() && c.core.Status() == 'I'
		c.mu.Unlock()
		if !still {
			return // the next sweep looks again
		}
		c.logger().Info("server_fast_close: closing client between transactions", zap.Uint64("server_id", srv.ID))
		go c.closeWith(&wire.Error{Severity: "FATAL", Code: wire.CodeAdminShutdown,
			Message: "terminating connection due to administrator command",
			Detail:  "The database's configuration changed (server_fast_close)."})
	}
}

// closeWith sends the client e and ends its session.
func (c *clientConn) closeWith(e *wire.Error) {
	c.mu.Lock()
	gone := c.gone
	c.gone = true
	c.mu.Unlock()
	if gone {
		return
	}
	c.sendError(e)
	_ = c.conn.Close()
	c.wake()
}

// cancelDeadline is when a cancel request forwarded now is given up
// (cancel_wait_timeout); zero for no limit.
func (p *Proxy) cancelDeadline() time.Time {
	d := p.config().CancelWaitTimeout.D()
	if d <= 0 {
		return time.Time{}
	}
	return time.Now().Add(d)
}
