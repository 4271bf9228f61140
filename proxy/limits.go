package proxy

// Connection limits per database and per user (PgBouncer's
// max_db_connections, max_user_connections: clients wait, in package
// pool's shared limits; max_db_client_connections,
// max_user_client_connections: logins refused with 53300), the reserve
// pool and per-user pool_size, as the pools get them.

import (
	"sync"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/login"
	"github.com/muxpg/mux/pool"
)

// limitSet holds the server limits shared by pools: one per database
// name clients ask for, one per user servers log in as. A limit, once
// made, stays (its cap follows the configuration), so every pool of a
// database or user counts in the same one.
type limitSet struct {
	mu    sync.Mutex
	dbs   map[string]*pool.Limit
	users map[string]*pool.Limit
}

// get returns the limit for name in m, made if needed, with cap max.
func (ls *limitSet) get(m *map[string]*pool.Limit, name string, max int) *pool.Limit {
	ls.mu.Lock()
	if *m == nil {
		*m = map[string]*pool.Limit{}
	}
	l := (*m)[name]
	if l == nil {
		l = pool.NewLimit(max)
		(*m)[name] = l
	}
	ls.mu.Unlock()
	if _, cur := l.Counts(); cur != max {
		l.SetMax(max)
	}
	return l
}

// limitedPoolConfig is poolConfig with the pool's size for user (a
// user's pool_size overrides the database's), its reserve, and the
// database's and the server user's shared limits. dbName is the name
// clients ask for.
func (p *Proxy) limitedPoolConfig(s *snapshot, dbName string, db config.Database, user string, u *login.User) pool.Config {
	cfg := s.cfg
	pc := p.poolConfig(s, db, user, u)
	size := cfg.PoolSizeFor(db, user)
	pc.MaxSize, pc.MinSize = size, min(db.MinPoolSize, size)
	pc.Reserve, pc.ReserveTimeout = cfg.ReservePoolFor(db, user), cfg.ReservePoolTimeout.D()
	serverUser := pc.Target.User
	pc.Limits = []*pool.Limit{
		p.limits.get(&p.limits.dbs, dbName, cfg.DBServerLimit(db)),
		p.limits.get(&p.limits.users, serverUser, cfg.UserServerLimit(serverUser)),
	}
	return pc
}

// clientCounts counts logged-in clients per database and per user, for
// max_db_client_connections and max_user_client_connections. Guarded by
// Proxy.keysMu: a client counts from register to unregister.
type clientCounts struct {
	dbs, users map[string]int
}

// admitClientLocked counts c in its database and user, or refuses it
// with 53300 if either is full. p.keysMu held.
func (p *Proxy) admitClientLocked(c *clientConn) error {
	cc := &p.clientCounts // nil maps read as zero; countClientLocked makes them
	cfg := p.config()
	if db, ok := cfg.LookupDatabase(c.database); ok {
		if max := cfg.DBClientLimit(db); max > 0 && cc.dbs[c.database] >= max {
			return wire.Fatal(wire.CodeTooManyConnections,
				"sorry, too many clients already for database %s (max_db_client_connections = %d)", quote(c.database), max)
		}
	}
	if max := cfg.UserClientLimit(c.user); max > 0 && cc.users[c.user] >= max {
		return wire.Fatal(wire.CodeTooManyConnections,
			"sorry, too many clients already for user %s (max_user_client_connections = %d)", quote(c.user), max)
	}
	p.countClientLocked(c)
	return nil
}

// countClientLocked counts c in its database and user. p.keysMu held.
func (p *Proxy) countClientLocked(c *clientConn) {
	cc := &p.clientCounts
	if cc.dbs == nil {
		cc.dbs, cc.users = map[string]int{}, map[string]int{}
	}
	cc.dbs[c.database]++
	cc.users[c.user]++
}

// forgetClientLocked uncounts a client admitClientLocked counted.
// p.keysMu held.
func (p *Proxy) forgetClientLocked(c *clientConn) {
	cc := &p.clientCounts
	if cc.dbs[c.database]--; cc.dbs[c.database] <= 0 {
		delete(cc.dbs, c.database)
	}
	if cc.users[c.user]--; cc.users[c.user] <= 0 {
		delete(cc.users, c.user)
	}
}
