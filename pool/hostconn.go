package pool

// A routed pool's side of hosts: each new server connection asks the
// HostSet for a host, and a server whose host left the routing (went
// down, lost or changed its role) is closed when next idle.

import (
	"context"
	"sync/atomic"
)

// hostLink ties a server to the host it was connected to. Written once at
// connect but gen, which offRoute moves on.
type hostLink struct {
	host    *Host
	routing Routing       // the routing it was picked for
	standby bool          // the host was a replica at connect
	epoch   uint64        // host.epoch at connect
	gen     atomic.Uint64 // HostSet.gen when last found on the routing
	gone    atomic.Bool
}

// dialRouted connects to cfg.Target, or with Hosts set to the host the
// routing picks, keeping cfg.Target's login; params as for dial.
func (p *Pool) dialRouted(ctx context.Context, cfg Config, params map[string]string) (*Server, error) {
	hs := cfg.Hosts
	if hs == nil {
		return dial(ctx, cfg.Target, params, p.log)
	}
	r := hs.Routing()
	if p.forReads {
		r = RouteReads
	}
	h, err := hs.Pick(ctx, cfg.Target, r)
	if err != nil {
		return nil, err
	}
	t := cfg.Target
	t.Host, t.Port = h.Spec.Host, h.Spec.Port
	gen := hs.gen.Load()
	s, err := dial(ctx, t, params, p.log)
	if err != nil {
		hs.connectFailed(h, err)
		return nil, err
	}
	hs.noteTarget(cfg.Target)
	s.route.host, s.route.routing, s.route.epoch = h, r, h.epoch.Load()
	h.mu.Lock()
	s.route.standby = h.role == RoleStandby
	h.mu.Unlock()
	s.route.gen.Store(gen)
	h.conns.Add(1)
	return s, nil
}

// offRoute reports whether the server's host went down or changed role
// since it connected, or no longer serves the routing. Called under
// pool.mu; costs one atomic load unless something changed.
func (l *hostLink) offRoute() bool {
	if l.host.epoch.Load() != l.epoch {
		return true
	}
	hs := l.host.set
	g := hs.gen.Load()
	if g == l.gen.Load() {
		return false
	}
	if !hs.eligible(l.host, l.routing) {
		return true
	}
	l.gen.Store(g)
	return false
}

// closed counts the server out of its host, once.
func (l *hostLink) closed() {
	if l.host != nil && l.gone.CompareAndSwap(false, true) {
		l.host.conns.Add(-1)
	}
}

// templateStale reports whether a routed pool's routing changed since t
// was fetched, so that what clients are told at login (in_hot_standby,
// default_transaction_read_only) follows the host they will get.
func (p *Pool) templateStale(t *Template) bool {
	hs := p.Config().Hosts
	return hs != nil && hs.gen.Load() != t.routeGen
}

// OnStandby reports whether the server's host was a replica when it
// connected (its role changing closes it when next idle).
func (s *Server) OnStandby() bool { return s.route.standby }
