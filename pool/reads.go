package pool

// The read side of a read/write split (read_write_split): a pool whose
// Config has ReadSplit and Hosts keeps a read sibling, a pool of its own
// with the same login and sizes whose new servers go to a replica that is
// up and within max_replica_lag (RouteReads; the primary when there is
// none). The proxy takes a server from the sibling for a transaction that
// only reads, and from the pool itself for everything else. Routing
// happens when a server connection is made, as for every routed pool: a
// sibling server whose host goes down, starts lagging, or stops being
// preferred (the primary, once a replica is back) closes when next idle.

import "go.uber.org/zap"

// Reads returns the pool's read sibling, nil without one.
func (p *Pool) Reads() *Pool { return p.reads.Load() }

// ForReads reports whether p is a read sibling.
func (p *Pool) ForReads() bool { return p.forReads }

// readsConfig is a read sibling's configuration: the pool's, without
// min_pool_size (reads open servers on demand).
func readsConfig(cfg Config) Config {
	cfg.ReadSplit = false
	cfg.MinSize = 0
	return cfg
}

// syncReads creates, reconfigures or closes the read sibling to match
// cfg (New, SetConfig). The sibling's own servers follow its SetConfig.
func (p *Pool) syncReads(cfg Config) {
	r := p.reads.Load()
	p.mu.Lock()
	want := cfg.ReadSplit && cfg.Hosts != nil && !p.closed // no sibling for a closed pool
	p.mu.Unlock()
	switch {
	case want && r == nil:
		r = makePool(readsConfig(cfg), p.log.With(zap.Bool("reads", true)), true)
		if pick := p.loops.Load(); pick != nil {
			r.loops.Store(pick)
		}
		p.reads.Store(r)
	case want:
		r.SetConfig(readsConfig(cfg))
	case r != nil:
		p.reads.Store(nil)
		r.Close() // its lent servers close as they come back
	}
}

// Pool returns the pool a server belongs to (a read sibling for one of
// its servers).
func (s *Server) Pool() *Pool { return s.pool }
