package pool

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/muxpg/mux/internal/wire"
)

// How servers are reused: the order idle ones are lent in (LIFO, or FIFO
// with Config.RoundRobin), the query each new one runs first
// (Config.ConnectQuery), and whether a lent one is due to close.

// idleNextLocked returns the index in p.idle of the server to lend next:
// the last released (LIFO: the warmest), or with RoundRobin the first
// (FIFO: every server gets its turn). p.idle must not be empty; p.mu held.
func (p *Pool) idleNextLocked() int {
	if p.cfg.RoundRobin {
		return 0
	}
	return len(p.idle) - 1
}

// takeIdleLocked removes p.idle[i] and returns it. p.mu must be held.
func (p *Pool) takeIdleLocked(i int) *Server {
	s := p.idle[i]
	if i == len(p.idle)-1 {
		p.idle[i] = nil
		p.idle = p.idle[:i]
		return s
	}
	copy(p.idle[i:], p.idle[i+1:])
	p.idle[len(p.idle)-1] = nil
	p.idle = p.idle[:len(p.idle)-1]
	return s
}

// runConnectQuery runs the entry's connect_query on a new server. As in
// PgBouncer an error is logged and otherwise ignored; a server the query
// leaves in a transaction (or that fails to answer) is closed, so that no
// client ever sees that state. Parameters it reports (a SET of a reported
// setting) become the server's login values, which the pool's template
// and its clients' sync start from.
func (p *Pool) runConnectQuery(ctx context.Context, s *Server, sql string) error {
	res, err := s.Exec(ctx, sql)
	switch {
	case err != nil:
		s.close()
		return fmt.Errorf("connect_query: %w", err)
	case res.Status != 'I':
		p.log.Warn("connect_query left the server in a transaction; closing it",
			zap.Uint64("server_id", s.ID), zap.String("status", string(res.Status)))
		s.close()
		// Not worth retrying: every new server would do the same.
		return &LoginError{Err: wire.Fatal("25001", "connect_query left the server in a transaction (status %q)", res.Status)}
	case res.Err != nil:
		p.log.Warn("connect_query failed", zap.Uint64("server_id", s.ID),
			zap.String("sqlstate", res.Err.Code), zap.String("message", res.Err.Message))
	}
	for k, v := range s.Params() {
		s.Startup[k] = v
	}
	return nil
}

// CloseNeeded reports whether s, lent out, is to be closed when released
// for a reason other than its age: RECONNECT, PAUSE, a reload that moved
// its target, its host leaving the routing (server_fast_close closes it
// sooner in session mode).
func (s *Server) CloseNeeded() bool {
	p := s.pool
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	return s.gen != p.gen || s.route.host != nil && s.route.offRoute()
}
