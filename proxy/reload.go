package proxy

import (
	"slices"

	"go.uber.org/zap"

	"github.com/muxpg/mux/config"
)

// Reload puts a new configuration in force without dropping clients. cs
// holds it with the files it names already read and checked
// (config.Load): users and every setting read per connection or per query
// take effect for what comes next; each pool takes its new size and times,
// and a database whose target moved drains its old servers (closed as they
// come back) while new ones go to the new target. New connections get the
// new TLS certificates and keys, open ones keep theirs. Listen addresses
// need a restart or a hand-over; that is logged. On error nothing changes.
//
// The proxy's snapshot is built whole from cs and put in force with one
// store: a login sees the old one or the new one, never a mix. The store
// and the pools' update happen under poolMu, so that a pool poolFor makes
// meanwhile gets the new settings too.
func (p *Proxy) Reload(cs *config.Snapshot) error {
	s, err := newSnapshot(cs)
	if err != nil {
		return err
	}
	p.setMu.Lock()
	defer p.setMu.Unlock()
	p.putInForce(s)
	p.log.Info("configuration reloaded")
	return nil
}

// putInForce stores s and gives every pool its settings. p.setMu held, so
// that a console SET, which builds on the snapshot in force, is not lost
// to a reload in between (nor the reload to it).
func (p *Proxy) putInForce(s *snapshot) {
	cfg := s.cfg
	p.poolMu.Lock()
	old := p.snap.Swap(s).cfg
	for key, pl := range p.pools {
		db, ok := cfg.LookupDatabase(key.database)
		if !ok {
			// Gone from the config: new logins get 3D000; connected clients
			// finish on what the pool has, and it keeps no idle minimum.
			pc := pl.Config()
			pc.MinSize = 0
			pl.SetConfig(pc)
			p.log.Info("database removed from the configuration", zap.String("database", key.database))
			continue
		}
		pl.SetConfig(p.limitedPoolConfig(s, key.database, db, key.user, s.users[key.user]))
	}
	p.poolMu.Unlock()
	p.pruneHostSets(cfg)
	if !slices.Equal(old.Listen, cfg.Listen) || old.UnixSocketDir != cfg.UnixSocketDir {
		p.log.Warn("listen addresses changed: they apply after a restart or hand-over")
	}
	if cfg.PeerID != old.PeerID {
		p.log.Warn("peer_id changed: it applies after a restart (issued cancel keys name the old one)")
	}
}
