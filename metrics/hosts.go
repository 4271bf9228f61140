package metrics

// Hosts of routed database entries (several hosts, or a
// target_session_attrs): their series, and what they mean for readiness.
// An entry is ready while some host can serve its routing; a dead primary
// with a live replica is "degraded", which /readyz reports but does not
// count against readiness: every instance of mux sees the same hosts, so
// taking one out of a load balancer would not help, and reads go on.

import (
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/pool"
	"github.com/muxpg/mux/proxy"
)

// HostSource is what the host series and readiness read; *proxy.Proxy is
// one.
type HostSource interface {
	Hosts() []proxy.HostRow
	HostHealth() map[string]pool.Health
}

// HostCollector reports each host of each routed entry at scrape time.
type HostCollector struct {
	src                      HostSource
	up, role, conns, refused *prometheus.Desc
	timeline                 *prometheus.Desc
	lag, lagBytes, lagging   *prometheus.Desc
}

var _ prometheus.Collector = (*HostCollector)(nil)

// NewHostCollector returns a HostCollector reading src.
func NewHostCollector(src HostSource) *HostCollector {
	l := []string{"database", "host"}
	return &HostCollector{
		src:      src,
		up:       prometheus.NewDesc("mux_host_up", "1 if the host answered its last health check, else 0.", l, nil),
		role:     prometheus.NewDesc("mux_host_role", "1 for the host's role as last seen (primary, replica, unknown).", append(l, "role"), nil),
		conns:    prometheus.NewDesc("mux_host_connections", "Server connections mux holds to the host (all pools).", l, nil),
		refused:  prometheus.NewDesc("mux_host_refused", "1 if the host is up but gets no connections (it claims primary while another host is primary).", l, nil),
		timeline: prometheus.NewDesc("mux_host_timeline", "The host's timeline as of its last check.", l, nil),
		lag:      prometheus.NewDesc("mux_host_lag_seconds", "A replica's replay lag as of its last check (max_replica_lag).", l, nil),
		lagBytes: prometheus.NewDesc("mux_host_lag_bytes", "How far a replica's replay is behind the primary's WAL position, in bytes.", l, nil),
		lagging:  prometheus.NewDesc("mux_host_lagging", "1 if the replica lags more than max_replica_lag and gets no connections.", l, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *HostCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.up, c.role, c.conns, c.refused, c.timeline, c.lag, c.lagBytes, c.lagging} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *HostCollector) Collect(ch chan<- prometheus.Metric) {
	for _, h := range c.src.Hosts() {
		lv := []string{labelValue(h.Entry), h.Host + ":" + strconv.Itoa(h.Port)}
		g := func(d *prometheus.Desc, v float64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append(lv, extra...)...)
		}
		g(c.up, b2f(h.State == pool.HostUp))
		for _, r := range []pool.Role{pool.RolePrimary, pool.RoleStandby, pool.RoleUnknown} {
			g(c.role, b2f(h.Role == r), r.String())
		}
		g(c.conns, float64(h.Conns))
		g(c.refused, b2f(h.State == pool.HostUp && h.Reason != ""))
		g(c.timeline, float64(h.Timeline))
		if h.LagKnown {
			g(c.lag, h.Lag.Seconds())
			g(c.lagBytes, float64(h.LagBytes))
			g(c.lagging, b2f(h.Lagging != ""))
		}
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}

// routedTargets adds the hosts of cfg's routed entries to byAddr/out as
// probe targets, each naming the entries it may serve in anyOf.
func routedTargets(name string, db config.Database, byAddr map[string]*target, out []*target) []*target {
	for _, h := range db.HostList() {
		var t *target
		t, out = targetFor(pool.Target{Host: h.Host, Port: h.Port}, byAddr, out)
		t.anyOf = append(t.anyOf, name)
	}
	return out
}

// targetFor returns the probe target of pt's address, adding it to
// byAddr and out if it is new.
func targetFor(pt pool.Target, byAddr map[string]*target, out []*target) (*target, []*target) {
	network, address := pt.NetAddr()
	key := network + " " + address
	t := byAddr[key]
	if t == nil {
		t = &target{network: network, address: address}
		byAddr[key] = t
		out = append(out, t)
	}
	return t, out
}

// routedProblems returns why routed entries keep mux from being ready,
// and which are degraded. An entry whose hosts mux already checks (it has
// a pool) is judged by those checks: down when no host can serve its
// routing. Before that, by the probes: down when no host answers.
func (s *Server) routedProblems() (problems, degraded []string) {
	var health map[string]pool.Health
	if s.hosts != nil {
		health = s.hosts.HostHealth()
	}
	for _, name := range s.routed {
		if h, ok := health[name]; ok {
			switch h {
			case pool.HealthDown:
				problems = append(problems, fmt.Sprintf("database %s: none of its hosts answers its health checks", name))
			case pool.HealthDegraded:
				degraded = append(degraded, fmt.Sprintf("database %s: a host is down, or its target_session_attrs is served by its fallback or not at all", name))
			}
			continue
		}
		var reached, all []string
		for _, t := range s.targets {
			if !slices.Contains(t.anyOf, name) {
				continue
			}
			all = append(all, t.address)
			if t.up() {
				reached = append(reached, t.address)
			}
		}
		if len(reached) == 0 {
			problems = append(problems, fmt.Sprintf("database %s: none of its hosts reachable (%s)", name, strings.Join(all, ", ")))
		} else if len(reached) < len(all) {
			degraded = append(degraded, fmt.Sprintf("database %s: only %s of its hosts reachable", name, strings.Join(reached, ", ")))
		}
	}
	return problems, degraded
}

func (t *target) up() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.state == stateUp
}

// routedNames lists cfg's routed entries other than "*", sorted.
func routedNames(cfg *config.Config) []string {
	var out []string
	for name, db := range cfg.Databases {
		if name != config.WildcardDatabase && db.Routed() {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}
