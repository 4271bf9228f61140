package proxy

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/muxpg/mux/admin"
	"github.com/muxpg/mux/config"
)

// settable are the settings the console's SET changes. Each is read per
// pool (Reload's SetConfig) or per connection and wait, so a change
// applies as a reload's does; the rest need the configuration file and
// RELOAD. A later RELOAD puts the file's value back, as in PgBouncer.
var settable = map[string]func(c *config.Config, v string) error{
	"default_pool_size":   setInt(func(c *config.Config) *int { return &c.DefaultPoolSize }),
	"max_client_conn":     setInt(func(c *config.Config) *int { return &c.MaxClientConn }),
	"query_wait_timeout":  setDuration(func(c *config.Config) *config.Duration { return &c.QueryWaitTimeout }),
	"client_idle_timeout": setDuration(func(c *config.Config) *config.Duration { return &c.ClientIdleTimeout }),
	// The connection limits (limits.go).
	"max_db_connections":          setInt(func(c *config.Config) *int { return &c.MaxDBConnections }),
	"max_user_connections":        setInt(func(c *config.Config) *int { return &c.MaxUserConnections }),
	"max_db_client_connections":   setInt(func(c *config.Config) *int { return &c.MaxDBClientConnections }),
	"max_user_client_connections": setInt(func(c *config.Config) *int { return &c.MaxUserClientConnections }),
	"reserve_pool_size":           setInt(func(c *config.Config) *int { return &c.ReservePoolSize }),
	"reserve_pool_timeout":        setDuration(func(c *config.Config) *config.Duration { return &c.ReservePoolTimeout }),
}

func setInt(field func(*config.Config) *int) func(*config.Config, string) error {
	return func(c *config.Config, v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("%q is not an integer", v)
		}
		*field(c) = n
		return nil
	}
}

// setDuration takes a Go duration ("30s") or, as PgBouncer's SET does,
// a number of seconds.
func setDuration(field func(*config.Config) *config.Duration) func(*config.Config, string) error {
	return func(c *config.Config, v string) error {
		if secs, err := strconv.ParseFloat(v, 64); err == nil {
			*field(c) = config.Duration(secs * float64(time.Second))
			return nil
		}
		return field(c).UnmarshalText([]byte(v))
	}
}

// Set changes one setting of the configuration in force (the console's
// SET): it is applied to a copy, the copy validated as a file would be,
// then put in force as Reload does. admin.ErrUnknownSetting for a name
// that is not settable.
func (p *Proxy) Set(name, value string) error {
	apply, ok := settable[strings.ToLower(name)]
	if !ok {
		return admin.ErrUnknownSetting
	}
	p.setMu.Lock()
	defer p.setMu.Unlock()
	old := p.snapshot()
	cfg := *old.cfg // shallow: the maps are shared and never written
	if err := apply(&cfg, value); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	s := *old
	s.cfg = &cfg
	p.putInForce(&s)
	p.log.Info("setting changed from the admin console", zap.String("key", name), zap.String("value", value))
	return nil
}
