package proxy

// Host sets: an entry with several hosts (or a target_session_attrs) gets
// a pool.HostSet that checks its hosts and routes the new server
// connections of every pool of that entry. Entries with the same hosts and
// routing share one set, so each host is checked once however many
// entries and users reach it.

import (
	"fmt"
	"sort"
	"sync"

	"go.uber.org/zap"

	"github.com/muxpg/mux/admin"
	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/pool"
)

// hostSets holds the live HostSets by routeKey. Safe for concurrent use;
// its mutex is never held across I/O.
type hostSets struct {
	mu sync.Mutex
	m  map[string]*pool.HostSet
}

// routeKey names what a HostSet depends on: the hosts, the routing and
// the check settings.
func routeKey(db config.Database, hc config.HostChecks) string {
	return fmt.Sprintf("%v|%s|%s|%v|%v|%v", db.HostList(), db.EffectiveTSA(), db.EffectiveBalance(), db.Fallback(), hc,
		db.ReplicaLagLimit(hc.MaxReplicaLag))
}

// hostSetFor returns the HostSet of db, creating it; nil for an entry
// that is not routed (one host/port, no target_session_attrs).
func (p *Proxy) hostSetFor(cfg *config.Config, db config.Database) *pool.HostSet {
	if !db.Routed() {
		return nil
	}
	key := routeKey(db, cfg.HostChecks)
	hs := &p.hostSets
	hs.mu.Lock()
	defer hs.mu.Unlock()
	if s := hs.m[key]; s != nil {
		return s
	}
	if hs.m == nil {
		hs.m = map[string]*pool.HostSet{}
	}
	s := pool.NewHostSet(hostSetConfig(db, cfg), p.log.Named("hosts").With(zap.String("hosts", hostsLabel(db))))
	hs.m[key] = s
	return s
}

// hostSetConfig translates an entry's host keys for package pool.
func hostSetConfig(db config.Database, cfg *config.Config) pool.HostSetConfig {
	hc := pool.HostSetConfig{
		Name: hostsLabel(db), Fallback: db.Fallback(),
		Interval: cfg.HostCheckInterval.D(), Timeout: cfg.HostCheckTimeout.D(), RetryMax: cfg.HostRetryMax.D(),
		MaxLag: db.ReplicaLagLimit(cfg.MaxReplicaLag).D(),
	}
	for _, h := range db.HostList() {
		sp := pool.HostSpec{Host: h.Host, Port: h.Port}
		switch h.Role {
		case config.RolePrimary:
			sp.Fixed = pool.RolePrimary
		case config.RoleReplica:
			sp.Fixed = pool.RoleStandby
		}
		hc.Hosts = append(hc.Hosts, sp)
	}
	switch db.EffectiveTSA() {
	case config.TSAReadWrite, config.TSAPrimary:
		hc.Routing = pool.RoutePrimary
	case config.TSAReadOnly, config.TSAStandby:
		hc.Routing = pool.RouteStandby
	case config.TSAPreferStandby:
		hc.Routing = pool.RoutePreferStandby
	}
	switch db.EffectiveBalance() {
	case config.BalanceLeastBusy:
		hc.Balance = pool.BalanceLeastBusy
	case config.BalanceDisable:
		hc.Balance = pool.BalanceFirst
	}
	return hc
}

func hostsLabel(db config.Database) string {
	s := ""
	for i, h := range db.HostList() {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf("%s:%d", h.Host, h.Port)
	}
	return s + " " + db.EffectiveTSA()
}

// pruneHostSets closes the sets no entry of cfg uses any more (after a
// reload); pools moved off them were given their new set first.
func (p *Proxy) pruneHostSets(cfg *config.Config) {
	used := map[string]bool{}
	for _, db := range cfg.Databases {
		if db.Routed() {
			used[routeKey(db, cfg.HostChecks)] = true
		}
	}
	hs := &p.hostSets
	hs.mu.Lock()
	var drop []*pool.HostSet
	for k, s := range hs.m {
		if !used[k] {
			drop = append(drop, s)
			delete(hs.m, k)
		}
	}
	hs.mu.Unlock()
	for _, s := range drop {
		s.Close()
	}
}

// closeHostSets stops every host check (Shutdown).
func (p *Proxy) closeHostSets() {
	hs := &p.hostSets
	hs.mu.Lock()
	m := hs.m
	hs.m = nil
	hs.mu.Unlock()
	for _, s := range m {
		s.Close()
	}
}

// HostRow is one host of one database entry, for SHOW HOSTS and metrics.
type HostRow struct {
	Entry string // the [databases] entry
	pool.HostInfo
}

// Hosts lists the hosts of every routed entry whose set exists (an entry
// gets one with its first pool), sorted by entry.
func (p *Proxy) Hosts() []HostRow {
	cfg := p.config()
	names := make([]string, 0, len(cfg.Databases))
	for name, db := range cfg.Databases {
		if db.Routed() {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	var out []HostRow
	for _, name := range names {
		s := p.existingHostSet(cfg.Databases[name], cfg.HostChecks)
		if s == nil {
			continue
		}
		for _, h := range s.Hosts() {
			out = append(out, HostRow{Entry: name, HostInfo: h})
		}
	}
	return out
}

// HostHealth is the health of each routed entry whose set exists.
func (p *Proxy) HostHealth() map[string]pool.Health {
	cfg := p.config()
	out := map[string]pool.Health{}
	for name, db := range cfg.Databases {
		if s := p.existingHostSet(db, cfg.HostChecks); db.Routed() && s != nil {
			out[name] = s.Health()
		}
	}
	return out
}

func (p *Proxy) existingHostSet(db config.Database, hc config.HostChecks) *pool.HostSet {
	hs := &p.hostSets
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return hs.m[routeKey(db, hc)]
}

// consoleHosts is Hosts for the admin console's SHOW HOSTS.
func (p *Proxy) consoleHosts() []admin.Host {
	rows := p.Hosts()
	out := make([]admin.Host, 0, len(rows))
	for _, r := range rows {
		role := r.Role.String()
		if r.Fixed {
			role += " (fixed)"
		}
		reason := r.Reason
		if reason == "" {
			reason = r.Lagging
		}
		out = append(out, admin.Host{Database: r.Entry, Host: r.Host, Port: r.Port, Role: role,
			Health: r.State.String(), Primary: r.Primary, Timeline: r.Timeline, Reason: reason,
			LastCheck: r.LastCheck, Connections: r.Conns, LagKnown: r.LagKnown, Lag: r.Lag, LagBytes: r.LagBytes})
	}
	return out
}
