package config

// Connection limits beyond max_client_conn, with PgBouncer's semantics:
// server-side limits (max_db_connections, max_user_connections) make
// clients wait for a server; client-side limits
// (max_db_client_connections, max_user_client_connections) refuse a
// login with 53300; the reserve pool lets a pool grow past its size for
// clients that have waited reserve_pool_timeout.

import (
	"time"
)

// DefaultReservePoolTimeout is reserve_pool_timeout's default, PgBouncer's.
const DefaultReservePoolTimeout = 5 * time.Second

// Limits holds the global limit keys. It is embedded in Config, so its
// keys are top-level ones. A per-entry value of 0 (or absent) means the
// global one, as in PgBouncer.
type Limits struct {
	// MaxDBConnections caps the server connections of all pools of one
	// database (the name clients ask for); a client needing one more
	// waits. 0 = unlimited. Default 0.
	MaxDBConnections int `toml:"max_db_connections"`
	// MaxUserConnections caps the server connections of all pools that log
	// in to Postgres as one user (the entry's user, else the client's); a
	// client needing one more waits. 0 = unlimited. Default 0.
	MaxUserConnections int `toml:"max_user_connections"`
	// MaxDBClientConnections caps the logged-in clients of one database;
	// more are refused with 53300. 0 = unlimited. Default 0.
	MaxDBClientConnections int `toml:"max_db_client_connections"`
	// MaxUserClientConnections caps the logged-in clients of one user;
	// more are refused with 53300. 0 = unlimited. Default 0.
	MaxUserClientConnections int `toml:"max_user_client_connections"`
	// ReservePoolSize is how many servers a pool may open beyond its size
	// for a client that has waited ReservePoolTimeout. 0 = off. Default 0.
	ReservePoolSize int `toml:"reserve_pool_size"`
	// ReservePoolTimeout is how long a client waits before the reserve
	// pool serves it. 0 turns the reserve pool off. Default 5s.
	ReservePoolTimeout Duration `toml:"reserve_pool_timeout"`
}

// DatabaseLimits holds a [databases] entry's limit keys (embedded in
// Database).
type DatabaseLimits struct {
	// MaxDBConnections overrides max_db_connections; 0 = the global one.
	MaxDBConnections int `toml:"max_db_connections"`
	// MaxDBClientConnections overrides max_db_client_connections; 0 = the
	// global one.
	MaxDBClientConnections int `toml:"max_db_client_connections"`
	// ReservePoolSize overrides reserve_pool_size (0 turns the reserve
	// off for the entry); absent = the global one.
	ReservePoolSize *int `toml:"reserve_pool_size"`
}

// UserLimits holds a [users] entry's pool and limit keys (embedded in
// User). Each overrides the database's and the global setting.
type UserLimits struct {
	// PoolSize is the server connections of each of the user's pools; 0 =
	// the database's pool_size.
	PoolSize int `toml:"pool_size"`
	// ReservePoolSize overrides the database's and the global
	// reserve_pool_size; absent = those.
	ReservePoolSize *int `toml:"reserve_pool_size"`
	// MaxUserConnections overrides max_user_connections; 0 = the global one.
	MaxUserConnections int `toml:"max_user_connections"`
	// MaxUserClientConnections overrides max_user_client_connections; 0 =
	// the global one.
	MaxUserClientConnections int `toml:"max_user_client_connections"`
}

func defaultLimits() Limits {
	return Limits{ReservePoolTimeout: Duration(DefaultReservePoolTimeout)}
}

// PoolSizeFor is the size of user's pool of db (an entry from
// LookupDatabase): the user's pool_size, else the database's.
func (c *Config) PoolSizeFor(db Database, user string) int {
	if u, ok := c.Users[user]; ok && u.PoolSize > 0 {
		return u.PoolSize
	}
	return db.PoolSize
}

// ReservePoolFor is how many servers user's pool of db may open beyond
// its size: the user's reserve_pool_size, else the database's, else the
// global one; 0 when reserve_pool_timeout is 0.
func (c *Config) ReservePoolFor(db Database, user string) int {
	if c.ReservePoolTimeout <= 0 {
		return 0
	}
	if u, ok := c.Users[user]; ok && u.ReservePoolSize != nil {
		return *u.ReservePoolSize
	}
	if db.ReservePoolSize != nil {
		return *db.ReservePoolSize
	}
	return c.ReservePoolSize
}

// DBServerLimit is max_db_connections for db (0: none).
func (c *Config) DBServerLimit(db Database) int {
	return orGlobal(db.MaxDBConnections, c.MaxDBConnections)
}

// DBClientLimit is max_db_client_connections for db (0: none).
func (c *Config) DBClientLimit(db Database) int {
	return orGlobal(db.MaxDBClientConnections, c.MaxDBClientConnections)
}

// UserServerLimit is max_user_connections for servers logged in as user
// (0: none).
func (c *Config) UserServerLimit(user string) int {
	return orGlobal(c.Users[user].MaxUserConnections, c.MaxUserConnections)
}

// UserClientLimit is max_user_client_connections for user (0: none).
func (c *Config) UserClientLimit(user string) int {
	return orGlobal(c.Users[user].MaxUserClientConnections, c.MaxUserClientConnections)
}

func orGlobal(own, global int) int {
	if own > 0 {
		return own
	}
	return global
}

// limitsProblems checks the limit keys, global and per entry.
func (c *Config) limitsProblems(ck *checker) {

	ck.atLeast(tomlKey("max_db_connections"), c.MaxDBConnections, 0)
	ck.atLeast(tomlKey("max_user_connections"), c.MaxUserConnections, 0)
	ck.atLeast(tomlKey("max_db_client_connections"), c.MaxDBClientConnections, 0)
	ck.atLeast(tomlKey("max_user_client_connections"), c.MaxUserClientConnections, 0)
	ck.atLeast(tomlKey("reserve_pool_size"), c.ReservePoolSize, 0)
	ck.nonNegative(tomlKey("reserve_pool_timeout"), c.ReservePoolTimeout)
	for name, db := range c.Databases {
		ck.atLeast(tomlKey("databases", name, "max_db_connections"), db.MaxDBConnections, 0)
		ck.atLeast(tomlKey("databases", name, "max_db_client_connections"), db.MaxDBClientConnections, 0)
		if db.ReservePoolSize != nil {
			ck.atLeast(tomlKey("databases", name, "reserve_pool_size"), *db.ReservePoolSize, 0)
		}
	}
	for name, u := range c.Users {
		ck.atLeast(tomlKey("users", name, "pool_size"), u.PoolSize, 0)
		ck.atLeast(tomlKey("users", name, "max_user_connections"), u.MaxUserConnections, 0)
		ck.atLeast(tomlKey("users", name, "max_user_client_connections"), u.MaxUserClientConnections, 0)
		if u.ReservePoolSize != nil {
			ck.atLeast(tomlKey("users", name, "reserve_pool_size"), *u.ReservePoolSize, 0)
		}
	}
}
