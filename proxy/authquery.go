package proxy

import (
	"context"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/login"
	"github.com/muxpg/mux/pool"
)

// authCacheTTL is how long a user's secret from auth_query is reused.
const authCacheTTL = 10 * time.Second

// authPoolSize bounds the connections auth_query lookups use per database.
const authPoolSize = 2

// authLookups runs auth_query over small dedicated pools and caches the
// answers briefly. The lookup never runs on a client's connection, so no
// client setting (search_path above all) can change what it calls; the
// default query is schema-qualified besides.
type authLookups struct {
	mu    sync.Mutex
	pools map[poolKey]*authPool       // by (where the lookup runs, auth user)
	cache map[authCacheKey]authCached // by (where, the query, user looked up)
}

// authCacheKey is one answer's key: where the lookup ran (authWhere), the
// query, and the user it looked up.
type authCacheKey struct{ where, query, user string }

// authTarget is where the lookups for db's clients run: auth_dbname (the
// entry's, else the global one) names a [databases] entry, as in PgBouncer,
// whose server and database are used; any other name is a Postgres
// database on db's own server; none means db's own database.
func authTarget(cfg *config.Config, db config.Database) config.Database {
	name := firstNonEmpty(db.AuthDBName, cfg.AuthDBName)
	if name == "" {
		return db
	}
	if _, ok := cfg.Databases[name]; ok && name != config.WildcardDatabase {
		if e, ok := cfg.LookupDatabase(name); ok {
			return e
		}
	}
	db.DBName = name
	return db
}

// authWhere names the server and database of a lookup target.
func authWhere(db config.Database) string {
	host, port := db.Host, db.Port
	if len(db.Hosts) > 0 {
		host, port = db.Hosts[0].Host, db.Hosts[0].Port
	}
	return host + ":" + strconv.Itoa(port) + "/" + db.DBName
}

// authPool is one lookup pool and its use, for dropping it when idle
// (with "*" and no auth_dbname there is one per database name asked for,
// before the client is authenticated).
type authPool struct {
	pl       *pool.Pool
	users    int       // lookups running on it
	lastUsed time.Time // when the last one ended
}

type authCached struct {
	entry *login.User // nil: no such login role
	until time.Time
}

// lookupUser returns the user entry for name from auth_query, or nil when
// Postgres has no such login role (or an expired one); snap is the login's
// snapshot.
func (p *Proxy) lookupUser(ctx context.Context, snap *snapshot, db config.Database, authUser, name string) (*login.User, error) {
	cfg := snap.cfg
	at := authTarget(cfg, db)
	dbname, where := at.DBName, authWhere(at)
	query := firstNonEmpty(db.AuthQuery, cfg.AuthQuery)
	a := &p.auth
	key := authCacheKey{where, query, name}
	a.mu.Lock()
	if c, ok := a.cache[key]; ok && time.Now().Before(c.until) {
		a.mu.Unlock()
		return c.entry, nil
	}
	pk := poolKey{where, authUser}
	ap := a.pools[pk]
	if ap == nil {
		if a.pools == nil {
			a.pools = map[poolKey]*authPool{}
			a.cache = map[authCacheKey]authCached{}
		}
		au := snap.users[authUser]
		pc := p.poolConfig(snap, config.Database{Host: at.Host, Port: at.Port, DBName: dbname, PoolSize: authPoolSize, HostsConfig: at.HostsConfig}, authUser, au)
		pc.MinSize = 0
		pc.Target.MaxPrepared = 0
		pc.ReadSplit = false // lookups need no replicas
		ap = &authPool{pl: pool.New(pc, p.log.Named("auth_query").With(zap.String("database", dbname), zap.String("auth_user", authUser)))}
		a.pools[pk] = ap
	}
	ap.users++
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		ap.users--
		ap.lastUsed = time.Now()
		a.mu.Unlock()
	}()
	pl := ap.pl

	s, err := pl.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	q := strings.ReplaceAll(query, "$1", string(appendLiteral(nil, name)))
	res, err := s.Exec(ctx, q)
	if err != nil || res.Err != nil {
		if err == nil {
			err = res.Err
		}
		s.MarkBroken()
		pl.Release(s)
		return nil, err
	}
	pl.Release(s)
	var entry *login.User
	if len(res.Rows) == 1 && len(res.Rows[0]) >= 2 && res.Rows[0][1] != "" {
		if e, err := login.NewUser(name, config.User{Password: res.Rows[0][1]}); err == nil {
			e.FromQuery = true
			entry = e
		}
	}
	a.mu.Lock()
	a.cache[key] = authCached{entry: entry, until: time.Now().Add(authCacheTTL)}
	a.mu.Unlock()
	return entry, nil
}

// closeAuth closes the lookup pools.
func (p *Proxy) closeAuth() {
	p.auth.mu.Lock()
	pools := p.auth.pools
	p.auth.pools = nil
	p.auth.mu.Unlock()
	for _, ap := range pools {
		ap.pl.Close()
	}
}

// dropIdleAuth forgets expired cached answers and closes the lookup pools
// unused for idle (a pool a lookup still holds is not dropped; a later
// lookup makes a new one).
func (p *Proxy) dropIdleAuth(now time.Time, idle time.Duration) {
	a := &p.auth
	var drop []*pool.Pool
	a.mu.Lock()
	for k, c := range a.cache {
		if !now.Before(c.until) {
			delete(a.cache, k)
		}
	}
	for k, ap := range a.pools {
		if ap.users == 0 && now.Sub(ap.lastUsed) >= idle {
			drop = append(drop, ap.pl)
			delete(a.pools, k)
		}
	}
	a.mu.Unlock()
	for _, pl := range drop {
		pl.Close()
	}
}
