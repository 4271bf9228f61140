package admin

// SHOW HOSTS: each host of each routed database entry (several hosts, or a
// target_session_attrs), with its role, health and why it gets no
// connections. mux's own command: PgBouncer has none like it.

import (
	"strconv"
	"time"
)

// Host is one host of one routed database entry.
type Host struct {
	Database    string // the [databases] entry
	Host        string
	Port        int
	Role        string // primary, replica or unknown; "(fixed)" appended when configured
	Health      string // up, down or unknown
	Primary     bool   // the elected primary, the one writes go to
	Timeline    uint32
	Reason      string // why it gets no connections: a failed check, a second primary
	LastCheck   time.Time
	Connections int64 // mux's server connections to it, all pools
	// A replica's replay lag as of its last check; LagKnown false for a
	// primary and when the check could not read it.
	LagKnown bool
	Lag      time.Duration
	LagBytes uint64
}

var showHostsCols = columns("database:text host:text port:int4 role:text health:text primary:int4 " +
	"timeline:int8 reason:text last_check:text connections:int4 lag:text lag_bytes:int8")

func showHosts(hosts []Host) []byte {
	r := newResult(showHostsCols)
	for _, h := range hosts {
		last := ""
		if !h.LastCheck.IsZero() {
			last = h.LastCheck.UTC().Format("2006-01-02 15:04:05.000 MST")
		}
		primary := 0
		if h.Primary {
			primary = 1
		}
		var lag, lagBytes any // NULL unless known
		if h.LagKnown {
			lag = strconv.FormatFloat(h.Lag.Seconds(), 'f', 3, 64)
			lagBytes = int64(min(h.LagBytes, 1<<63-1))
		}
		r.row(h.Database, h.Host, h.Port, h.Role, h.Health, primary, int64(h.Timeline), h.Reason, last, h.Connections, lag, lagBytes)
	}
	return r.finish()
}
