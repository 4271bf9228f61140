package pgbouncerconf

// peer_id and the [peers] section: PgBouncer's peering, which mux's fleet
// follows with the same names (config/peers.go).

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/muxpg/mux/config"
)

// fleet carries peer_id over; peerTables, run after every top-level
// setting is written, carries [peers].
func (c *converter) fleet() {
	id, kv, ok := c.intSetting("peer_id", 0, 0, config.MaxPeerID)
	c.peerID = id
	if !ok && len(c.ini.Sections["peers"]) == 0 {
		return // no peering: mux's default, written with the mux-only ones
	}
	c.section("Fleet (PgBouncer peering)")
	c.add("peer_id", tomlInt(id), c.origin(kv, ok))
}

func (c *converter) peerTables() {
	entries := c.ini.Sections["peers"]
	if len(entries) == 0 {
		return
	}
	if c.peerID == 0 {
		c.note("[peers] (%d entries): left out: peer_id is 0, so PgBouncer does not peer, and mux needs peer_id for [peers]", len(entries))
		return
	}
	defs := map[string]KV{}
	var ids []string
	for _, kv := range entries {
		if _, seen := defs[kv.Key]; !seen {
			ids = append(ids, kv.Key)
		}
		defs[kv.Key] = kv // a later entry replaces an earlier one
	}
	for _, id := range ids {
		c.peer(id, defs[id])
	}
}

// peer converts one [peers] entry, "ID = host=... port=... pool_size=...".
func (c *converter) peer(id string, kv KV) {
	label := fmt.Sprintf("[peers] %s (%s)", id, c.where(kv))
	if n, err := strconv.Atoi(id); err != nil || n < 1 || n > config.MaxPeerID {
		c.note("%s: left out: the key must be a peer_id, 1..%d", label, config.MaxPeerID)
		return
	}
	params, err := parseConnString(kv.Value)
	if err != nil {
		c.fail(kv, "connection string: %v", err)
		return
	}
	g := &group{table: []string{"peers", id}, comment: []string{"from " + label}}
	for _, cp := range params {
		switch cp.key {
		case "host":
			if cp.value == "" || strings.HasPrefix(cp.value, "@") || strings.ContainsAny(cp.value, ", \x00") {
				c.note("%s: left out: mux cannot reach host %q (one host name, address or socket directory)", label, cp.value)
				return
			}
			g.lines = append(g.lines, setting{key: "host", value: tomlString(cp.value)})
		case "port", "pool_size":
			n, err := parseInt(cp.value)
			if err != nil || n < 0 || n > 65535 {
				c.fail(kv, "%s: %q is not a number in 0..65535", cp.key, cp.value)
				return
			}
			g.lines = append(g.lines, setting{key: cp.key, value: tomlInt(n)})
		default:
			c.note("%s: %s: not a peer setting; ignored", label, cp.key)
		}
	}
	if !hasHost(g) {
		c.note("%s: left out: no host", label)
		return
	}
	c.d.groups = append(c.d.groups, g)
}

func hasHost(g *group) bool {
	for _, s := range g.lines {
		if s.key == "host" {
			return true
		}
	}
	return false
}
