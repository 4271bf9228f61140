package pgbouncerconf

// Connection limits and the reserve pool: global ([pgbouncer]), per
// database (connection string keys) and per user ([users]), carried
// under PgBouncer's names.

import (
	"fmt"
	"math"
	"strconv"
)

// limitSettings carries the global limits and the reserve pool.
func (c *converter) limitSettings() {
	for _, key := range []string{"max_db_connections", "max_user_connections",
		"max_db_client_connections", "max_user_client_connections", "reserve_pool_size"} {
		c.intAsIs(key, 0, 0, math.MaxInt32)
	}
	c.durationSetting("reserve_pool_timeout", 5)
}

// dbLimitKeys are the [databases] connection string keys limitParam
// carries ("reserve_pool" is PgBouncer's older name of reserve_pool_size).
var dbLimitKeys = map[string]string{
	"max_db_connections":        "max_db_connections",
	"max_db_client_connections": "max_db_client_connections",
	"reserve_pool":              "reserve_pool_size",
	"reserve_pool_size":         "reserve_pool_size",
}

// userLimitKeys are the [users] keys limitParam carries.
var userLimitKeys = map[string]string{
	"max_user_connections":        "max_user_connections",
	"max_user_client_connections": "max_user_client_connections",
	"reserve_pool_size":           "reserve_pool_size",
	"pool_size":                   "pool_size",
}

// limitParam converts one limit key of a [databases] or [users] entry
// (keys: the table of those it knows). It reports false for another key;
// a value that is not an integer fails the import, and one mux cannot
// express is noted and left out (ok true, no setting).
func (c *converter) limitParam(keys map[string]string, kv KV, label string, cp connParam) (s *setting, ok bool) {
	key, known := keys[cp.key]
	if !known {
		return nil, false
	}
	n, err := strconv.ParseInt(cp.value, 10, 32)
	if err != nil {
		c.fail(kv, "%s: %q is not an integer", cp.key, cp.value)
		return nil, true
	}
	switch {
	case n < 0:
		c.note("%s: %s=%q: negative, which PgBouncer reads as not set; left out", label, cp.key, cp.value)
		return nil, true
	case n == 0 && key == "pool_size":
		c.note("%s: pool_size=0: PgBouncer opens no server connection for the user; mux cannot express that and uses the database's pool_size", label)
		return nil, true
	}
	comment := ""
	if key != cp.key {
		comment = fmt.Sprintf("from %s=%s", cp.key, cp.value)
	}
	return &setting{key: key, value: tomlInt(n), comment: comment}, true
}
