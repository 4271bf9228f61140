package pgbouncerconf

import (
	"math"
	"time"

	"github.com/muxpg/mux/config"
)

// Settings PgBouncer 1.19–1.25 operators reach for that mux carries under
// the same name (issue 15).

// boolSetting carries a boolean setting over under the same name.
func (c *converter) boolSetting(key, def string) {
	raw, kv, ok := c.value(key, def)
	on, err := parseBool(raw)
	if err != nil {
		c.fail(kv, "%v", err)
	}
	c.add(key, tomlBool(on), c.origin(kv, ok))
}

// logSettings carries log_connections, log_disconnections, log_stats and
// stats_period (PgBouncer: integer seconds).
func (c *converter) logSettings() {
	c.boolSetting("log_connections", "1")
	c.boolSetting("log_disconnections", "1")
	c.boolSetting("log_pooler_errors", "1")
	c.boolSetting("log_stats", "1")
	n, kv, ok := c.intSetting("stats_period", 60, 1, maxSeconds)
	c.add("stats_period", tomlString(formatDuration(time.Duration(n)*time.Second)), c.origin(kv, ok))
}

// tcpUserTimeout carries tcp_user_timeout: PgBouncer's unit is ms.
func (c *converter) tcpUserTimeout() {
	c.intDuration("tcp_user_timeout", 0, math.MaxInt32, time.Millisecond)
}

// scramIterations carries scram_iterations, within what mux accepts.
func (c *converter) scramIterations() {
	c.intAsIs("scram_iterations", config.DefaultSCRAMIterations, 1, config.MaxSCRAMIterations)
}
