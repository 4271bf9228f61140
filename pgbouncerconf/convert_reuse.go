package pgbouncerconf

import (
	"fmt"
	"time"
)

// PgBouncer 1.19-1.25's settings of when connections end and how servers
// are reused, which mux carries under the same names: server_round_robin,
// server_fast_close, transaction_timeout and cancel_wait_timeout; per
// database server_lifetime and connect_query; per user query_timeout,
// idle_transaction_timeout, transaction_timeout and client_idle_timeout.

// serverReuse carries server_round_robin and server_fast_close (in the
// section under way: server connections).
func (c *converter) serverReuse() {
	c.boolSetting("server_round_robin", "0")
	c.boolSetting("server_fast_close", "0")
}

// clientReuseTimeouts carries transaction_timeout and cancel_wait_timeout
// (in the section under way: client timeouts); 0 means off in both.
func (c *converter) clientReuseTimeouts() {
	c.durationSetting("transaction_timeout", 0)
	c.durationSetting("cancel_wait_timeout", 10)
}

// userTimeoutKeys are the [users] timeouts mux carries.
var userTimeoutKeys = map[string]bool{
	"query_timeout": true, "idle_transaction_timeout": true, "transaction_timeout": true, "client_idle_timeout": true,
}

// wholeSeconds reads a [databases] or [users] time value, which PgBouncer
// reads as whole seconds (atoi); 0 means "not set", the global value.
func (c *converter) wholeSeconds(kv KV, key, value string) (time.Duration, bool) {
	d, err := parseSeconds(value)
	if err != nil {
		c.fail(kv, "%s: %v", key, err)
		return 0, false
	}
	return d.Truncate(time.Second), true
}

// dbReuseParam carries a [databases] entry's server_lifetime or
// connect_query; it reports false for other keys.
func (c *converter) dbReuseParam(kv KV, cp connParam, add func(key, value, comment string)) bool {
	switch cp.key {
	case "server_lifetime":
		if d, ok := c.wholeSeconds(kv, cp.key, cp.value); ok && d > 0 {
			add("server_lifetime", tomlString(formatDuration(d)), "")
		}
	case "connect_query":
		if cp.value != "" {
			add("connect_query", tomlString(cp.value), "")
		}
	case "query_wait_timeout":
		if d, ok := c.queryWait(kv, cp); ok {
			add("query_wait_timeout", tomlString(formatDuration(d)), "")
		}
	default:
		return false
	}
	return true
}

// userTimeout converts a [users] timeout into the line of the user's
// table; ok is false for other keys.
func (c *converter) userTimeout(kv KV, cp connParam) (line setting, carried, ok bool) {
	var d time.Duration
	switch {
	case cp.key == "query_wait_timeout":
		d, carried = c.queryWait(kv, cp)
	case userTimeoutKeys[cp.key]:
		d, carried = c.wholeSeconds(kv, cp.key, cp.value)
		carried = carried && d != 0
	default:
		return setting{}, false, false
	}
	if !carried {
		return setting{}, false, true
	}
	return setting{key: cp.key, value: tomlString(formatDuration(d)), comment: fmt.Sprintf("from [users] %s", c.where(kv))}, true, true
}

// queryWait reads a [databases] or [users] query_wait_timeout: whole
// seconds where 0 counts (wait forever) and -1 means "not set".
func (c *converter) queryWait(kv KV, cp connParam) (time.Duration, bool) {
	if n, err := parseInt(cp.value); err == nil && n < 0 {
		return 0, false
	}
	return c.wholeSeconds(kv, cp.key, cp.value)
}
