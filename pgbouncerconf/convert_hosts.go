package pgbouncerconf

// Several hosts in one [databases] entry: PgBouncer's comma-separated
// host= (with one port, or a port= list of the same length) and its
// load_balance_hosts become mux's hosts list and load_balance_hosts.

import (
	"fmt"
	"slices"
	"strings"

	"github.com/muxpg/mux/config"
)

// multiHost carries host=h1,h2 (and port=, load_balance_hosts=) of entry
// kv to add; false (after c.fail) when they cannot be.
func (c *converter) multiHost(kv KV, host string, p map[string]string, add func(key, value, comment string)) bool {
	hosts := splitList(host)
	if len(hosts) == 0 {
		c.fail(kv, "host: no host in %q", host)
		return false
	}
	ports, ok := c.portList(kv, p["port"], len(hosts))
	if !ok {
		return false
	}
	var items []string
	seen := map[string]bool{}
	comment := "from host=" + host
	for i, h := range hosts {
		if strings.HasPrefix(h, "@") {
			c.fail(kv, "host: mux cannot connect to the abstract-namespace socket %q", h)
			return false
		}
		k := fmt.Sprintf("%s:%d", h, ports[i])
		if seen[k] {
			// PgBouncer would try it twice; mux lists a host once.
			comment = "from host=" + host + ", each host once"
			continue
		}
		seen[k] = true
		items = append(items, fmt.Sprintf("{host = %s, port = %d, role = %q}", tomlString(h), ports[i], config.RoleAuto))
	}
	add("hosts", "["+strings.Join(items, ", ")+"]", comment)
	// PgBouncer does not ask a host its role: it uses any that answers.
	add("target_session_attrs", tomlString(config.TSAAny), `as PgBouncer: any host; "read-write" would send connections to the primary only`)
	lb := config.BalanceRoundRobin
	if v, ok := p["load_balance_hosts"]; ok {
		switch strings.ToLower(v) {
		case "round-robin":
		case "disable":
			lb = config.BalanceDisable
		default:
			c.fail(kv, "load_balance_hosts: %q is not round-robin or disable", v)
			return false
		}
	}
	add("load_balance_hosts", tomlString(lb), "")
	return true
}

// portList reads port= for n hosts: absent (5432 each), one port for
// all, or one per host.
func (c *converter) portList(kv KV, s string, n int) ([]int64, bool) {
	out := slices.Repeat([]int64{config.DefaultPort}, n)
	if s == "" {
		return out, true
	}
	parts := splitList(s)
	if len(parts) != 1 && len(parts) != n {
		c.fail(kv, "port: %d ports for %d hosts", len(parts), n)
		return nil, false
	}
	for i, ps := range parts {
		v, err := parseInt(ps)
		if err != nil || v < 1 || v > 65535 {
			c.fail(kv, "port: %q is not a port number", ps)
			return nil, false
		}
		if len(parts) == 1 {
			return slices.Repeat([]int64{v}, n), true
		}
		out[i] = v
	}
	return out, true
}
