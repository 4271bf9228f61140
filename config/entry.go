package config

import (
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Settings of PgBouncer 1.19-1.25 about when a client or a server
// connection ends and how servers are reused: global (ServerReuse), per
// database (DatabaseServer) and per user (UserTimeouts).

// DefaultCancelWaitTimeout is cancel_wait_timeout's default, PgBouncer's.
const DefaultCancelWaitTimeout = 10 * time.Second

// ServerReuse holds the global settings of this file (embedded in Config).
type ServerReuse struct {
	// TransactionTimeout closes a client whose transaction (or
	// single-statement query) has been open longer than this, with FATAL
	// 25P04; its server is rolled back, or closed if mid-query. A user's
	// transaction_timeout overrides it. 0 = off. Default 0.
	TransactionTimeout Duration `toml:"transaction_timeout"`
	// CancelWaitTimeout bounds forwarding a cancel request (to Postgres or
	// a peer): connecting, sending and waiting for it to close the
	// connection. The cancelled server stays out of the pool meanwhile.
	// 0 = no limit. Default 10s.
	CancelWaitTimeout Duration `toml:"cancel_wait_timeout"`
	// ServerRoundRobin lends idle servers oldest-released first (FIFO),
	// spreading the load over all of them, instead of the most recently
	// released one (LIFO). Default false.
	ServerRoundRobin bool `toml:"server_round_robin"`
	// ServerFastClose, in session mode, closes a server due to close
	// (RECONNECT, a reload that moved its database, PAUSE) as soon as its
	// client is between transactions, and that client with it (57P01),
	// instead of when the client leaves. Default false.
	ServerFastClose bool `toml:"server_fast_close"`
}

// DatabaseServer holds the [databases.NAME] settings of this file
// (embedded in Database).
type DatabaseServer struct {
	// ServerLifetime overrides the global server_lifetime for this
	// database's servers; 0 = the global one.
	ServerLifetime Duration `toml:"server_lifetime"`
	// ConnectQuery runs on every new server connection after login, before
	// any client uses it. An error is logged and otherwise ignored, as in
	// PgBouncer; a server it leaves inside a transaction is closed.
	// Default "" (none).
	ConnectQuery string `toml:"connect_query"`
	// QueryWaitTimeout overrides the global query_wait_timeout for this
	// database's clients ("0s": wait forever); absent = the global one.
	// A user's overrides it in turn.
	QueryWaitTimeout *Duration `toml:"query_wait_timeout"`
}

// UserTimeouts holds the [users.NAME] timeouts (embedded in User). Each
// overrides the global setting of the same name for the user's clients;
// 0 (the default) means the global one, as in PgBouncer.
type UserTimeouts struct {
	QueryTimeout           Duration `toml:"query_timeout"`
	IdleTransactionTimeout Duration `toml:"idle_transaction_timeout"`
	TransactionTimeout     Duration `toml:"transaction_timeout"`
	ClientIdleTimeout      Duration `toml:"client_idle_timeout"`
	// QueryWaitTimeout, unlike the others, counts when present: "0s"
	// waits forever; absent = the database's, else the global one.
	QueryWaitTimeout *Duration `toml:"query_wait_timeout"`
}

// defaultServerReuse is ServerReuse's defaults.
func defaultServerReuse() ServerReuse {
	return ServerReuse{CancelWaitTimeout: Duration(DefaultCancelWaitTimeout)}
}

// Resolved returns t with each unset (0) timeout taken from c's global
// one: the timeouts in force for the user's clients.
func (c *Config) Resolved(t UserTimeouts) UserTimeouts {
	pick := func(user, global Duration) Duration {
		if user > 0 {
			return user
		}
		return global
	}
	return UserTimeouts{
		QueryTimeout:           pick(t.QueryTimeout, c.QueryTimeout),
		IdleTransactionTimeout: pick(t.IdleTransactionTimeout, c.IdleTransactionTimeout),
		TransactionTimeout:     pick(t.TransactionTimeout, c.TransactionTimeout),
		ClientIdleTimeout:      pick(t.ClientIdleTimeout, c.ClientIdleTimeout),
		QueryWaitTimeout:       t.QueryWaitTimeout,
	}
}

// QueryWaitTimeoutFor returns the query_wait_timeout in force for user's
// clients of database (the name the client asked for): the user's, else
// the database entry's, else the global one, as PgBouncer resolves it.
func (c *Config) QueryWaitTimeoutFor(database, user string) time.Duration {
	if u, ok := c.Users[user]; ok && u.QueryWaitTimeout != nil {
		return u.QueryWaitTimeout.D()
	}
	db, ok := c.Databases[database]
	if !ok {
		db = c.Databases[WildcardDatabase]
	}
	if db.QueryWaitTimeout != nil {
		return db.QueryWaitTimeout.D()
	}
	return c.QueryWaitTimeout.D()
}

// ServerLifetimeFor returns the server_lifetime in force for db's servers.
func (c *Config) ServerLifetimeFor(db Database) time.Duration {
	if db.ServerLifetime > 0 {
		return db.ServerLifetime.D()
	}
	return c.ServerLifetime.D()
}

// serverReuseProblems checks this file's settings.
func (c *Config) serverReuseProblems(ck *checker) {
	ck.nonNegative(toml.Key{"transaction_timeout"}, c.TransactionTimeout)
	ck.nonNegative(toml.Key{"cancel_wait_timeout"}, c.CancelWaitTimeout)
	for name, db := range c.Databases {
		ck.nonNegative(toml.Key{"databases", name, "server_lifetime"}, db.ServerLifetime)
		if db.QueryWaitTimeout != nil {
			ck.nonNegative(toml.Key{"databases", name, "query_wait_timeout"}, *db.QueryWaitTimeout)
		}
		if strings.IndexByte(db.ConnectQuery, 0) >= 0 {
			ck.add(toml.Key{"databases", name, "connect_query"}, "must not contain NUL bytes")
		}
	}
	for name, u := range c.Users {
		if u.QueryWaitTimeout != nil {
			ck.nonNegative(toml.Key{"users", name, "query_wait_timeout"}, *u.QueryWaitTimeout)
		}
		for key, d := range map[string]Duration{
			"query_timeout":            u.QueryTimeout,
			"idle_transaction_timeout": u.IdleTransactionTimeout,
			"transaction_timeout":      u.TransactionTimeout,
			"client_idle_timeout":      u.ClientIdleTimeout,
		} {
			ck.nonNegative(toml.Key{"users", name, key}, d)
		}
	}
}
