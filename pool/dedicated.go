package pool

// Dedicated servers: a connection to Postgres for one client alone, made
// with a pool's login and routing but never part of the pool. Replication
// connections are served this way (package proxy, replication.go): a
// walsender cannot run ordinary queries, so it could never be lent to
// another client, and PgBouncer never reuses one either.

import (
	"context"
	"net"

	"go.uber.org/zap"
)

// OpenDedicated connects to Postgres with cfg's login (Target), routing
// (Hosts) and ConnectTimeout, adding params to the StartupMessage (a
// replication connection's "replication", its settings). The server is
// never in a pool, counted in one, or read by a loop or a read goroutine:
// its owner reads and writes Conn directly and ends it with Close.
func OpenDedicated(ctx context.Context, cfg Config, params map[string]string, log *zap.Logger) (*Server, error) {
	if cfg.ConnectTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, cfg.ConnectTimeout)
		defer cancel()
	}
	// dialRouted needs a pool for its log alone; this one has no
	// maintenance loop and holds nothing.
	p := &Pool{cfg: cfg, log: log}
	return p.dialRouted(ctx, cfg, params)
}

// Conn is the connection of a dedicated server (OpenDedicated), for its
// owner to relay; a pooled server's belongs to its reader.
func (s *Server) Conn() net.Conn { return s.conn }

// Close ends a dedicated server's connection.
func (s *Server) Close() { s.close() }
