package proxy

import (
	"fmt"
	"maps"

	"github.com/muxpg/mux/config"
)

// The console's SET for this file's settings, all reloadable as in
// PgBouncer (set.go has the others).
func init() {
	maps.Copy(settable, map[string]func(c *config.Config, v string) error{
		"transaction_timeout":      setDuration(func(c *config.Config) *config.Duration { return &c.TransactionTimeout }),
		"cancel_wait_timeout":      setDuration(func(c *config.Config) *config.Duration { return &c.CancelWaitTimeout }),
		"query_timeout":            setDuration(func(c *config.Config) *config.Duration { return &c.QueryTimeout }),
		"idle_transaction_timeout": setDuration(func(c *config.Config) *config.Duration { return &c.IdleTransactionTimeout }),
		"server_round_robin":       setBool(func(c *config.Config) *bool { return &c.ServerRoundRobin }),
		"server_fast_close":        setBool(func(c *config.Config) *bool { return &c.ServerFastClose }),
	})
}

// setBool takes what PgBouncer's SET takes for a boolean (0 or 1) and
// the words TOML and Postgres use.
func setBool(field func(*config.Config) *bool) func(*config.Config, string) error {
	return func(c *config.Config, v string) error {
		switch v {
		case "1", "true", "on", "yes":
			*field(c) = true
		case "0", "false", "off", "no":
			*field(c) = false
		default:
			return fmt.Errorf("%q is not a boolean (0 or 1)", v)
		}
		return nil
	}
}
