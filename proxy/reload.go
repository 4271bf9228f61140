package proxy

import (
	"slices"

	"go.uber.org/zap"

	"github.com/muxpg/mux/config"
)

// Reload applies a new, validated configuration without dropping clients:
// users and every setting read per connection or per query take effect for
// what comes next; each pool takes its new size and times, and a database
// whose target moved drains its old servers (closed as they come back) while
// new ones go to the new target. TLS certificates and keys are re-read: new
// connections use them, open ones keep theirs. Listen addresses need a
// restart or a hand-over; that is logged. On error nothing changes.
func (p *Proxy) Reload(cfg *config.Config) error {
	users, err := buildUsers(cfg)
	if err != nil {
		return err
	}
	rules, err := loadHBA(cfg)
	if err != nil {
		return err
	}
	if err := p.loadTLS(cfg); err != nil {
		return err
	}
	p.hba.Store(rules)
	old := p.config()
	if !slices.Equal(old.Listen, cfg.Listen) || old.UnixSocketDir != cfg.UnixSocketDir {
		p.log.Warn("listen addresses changed: they apply after a restart or hand-over")
	}
	p.cfg.Store(cfg)
	p.users.Store(&users)

	p.poolMu.Lock()
	defer p.poolMu.Unlock()
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
		pl.SetConfig(p.poolConfig(cfg, db, key.user, users[key.user]))
	}
	p.log.Info("configuration reloaded")
	return nil
}
