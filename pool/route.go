package pool

// Routing: which host is the primary (elect), which hosts an entry's
// routing may use (eligibleLocked), and which one a new server connection
// goes to (Pick).

import (
	"context"
	"fmt"

	"go.uber.org/zap"
)

// elect chooses the primary among the hosts that are up and say they are
// one. The one in office stays unless another is on a strictly higher
// timeline (a promotion it missed: it is the old primary back after a
// partition); with none in office the highest timeline wins, ties to the
// first listed. Every other claimant gets no connections at all and is
// reported loudly: mux never writes to two primaries.
func (hs *HostSet) elect() (changed bool) {
	hs.mu.Lock()
	var claims []*Host
	tls := map[*Host]uint32{}
	for _, h := range hs.hosts {
		h.mu.Lock()
		if h.state == HostUp && h.role == RolePrimary {
			claims = append(claims, h)
			tls[h] = h.timeline
		}
		h.mu.Unlock()
	}
	winner := hs.primary
	if !contains(claims, winner) {
		winner = nil
	}
	for _, h := range claims {
		if winner == nil || tls[h] > tls[winner] {
			winner = h
		}
	}
	old := hs.primary
	hs.primary = winner
	report := hs.markLosersLocked(claims, winner, tls)
	changed = old != winner
	if changed && old != nil {
		old.epoch.Add(1) // its servers must not take writes any more
	}
	hs.mu.Unlock()
	if report != "" {
		hs.log.Error("several hosts answer as primary; only the one on the highest timeline gets connections", zap.String("claims", report))
	}
	switch {
	case changed && old == nil:
		hs.log.Info("primary found", zap.String("primary", hostName(winner)))
	case changed:
		hs.log.Warn("primary changed", zap.String("from", hostName(old)), zap.String("to", hostName(winner)))
	}
	return changed
}

// markLosersLocked gives every claimant but the winner its reason and
// returns a description of the conflict when it is new ("" otherwise).
func (hs *HostSet) markLosersLocked(claims []*Host, winner *Host, tls map[*Host]uint32) string {
	desc := ""
	for _, h := range claims {
		desc += fmt.Sprintf("%s timeline %d; ", h.Spec.addr(), tls[h])
		if h == winner {
			continue
		}
		h.mu.Lock()
		h.reason = fmt.Sprintf("also claims primary (timeline %d); primary is %s (timeline %d)", tls[h], winner.Spec.addr(), tls[winner])
		h.mu.Unlock()
	}
	if len(claims) < 2 {
		hs.claimsAt = ""
		return ""
	}
	if desc == hs.claimsAt {
		return ""
	}
	hs.claimsAt = desc
	return desc
}

// eligibleLocked returns the hosts the set's routing prefers and, when
// none of those is up, the ones it may fall back to. hs.mu held.
func (hs *HostSet) eligibleLocked() (preferred, fallback []*Host) {
	return hs.eligibleForLocked(hs.cfg.Routing)
}

// eligibleForLocked is eligibleLocked for routing r. A replica that lags
// more than max_replica_lag serves only "any". hs.mu held.
func (hs *HostSet) eligibleForLocked(r Routing) (preferred, fallback []*Host) {
	var standbys, any []*Host
	for _, h := range hs.hosts {
		h.mu.Lock()
		up, role, lagging := h.state == HostUp, h.role, h.lagging != ""
		h.mu.Unlock()
		switch {
		case !up:
		case role == RoleStandby:
			if !lagging {
				standbys = append(standbys, h)
			}
			any = append(any, h)
		case h == hs.primary:
			any = append(any, h)
		}
	}
	var primary []*Host
	if hs.primary != nil {
		primary = []*Host{hs.primary}
	}
	switch r {
	case RoutePrimary:
		return primary, nil
	case RouteStandby:
		if hs.cfg.Fallback {
			return standbys, primary
		}
		return standbys, nil
	case RoutePreferStandby, RouteReads:
		return standbys, primary
	}
	return any, nil
}

// routeLocked returns the hosts a new connection for routing r may go
// to now.
func (hs *HostSet) routeLocked(r Routing) []*Host {
	preferred, fallback := hs.eligibleForLocked(r)
	if len(preferred) > 0 {
		return preferred
	}
	return fallback
}

// eligible reports whether h may serve routing r now.
func (hs *HostSet) eligible(h *Host, r Routing) bool {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	return contains(hs.routeLocked(r), h)
}

// ErrNoHost is returned when no host can serve an entry's routing.
type ErrNoHost struct {
	Hosts   string
	Routing Routing
}

func (e *ErrNoHost) Error() string {
	return fmt.Sprintf("no host of %s can serve %s connections now", e.Hosts, e.Routing)
}

func (r Routing) String() string {
	switch r {
	case RoutePrimary:
		return "read-write"
	case RouteStandby:
		return "standby"
	case RoutePreferStandby:
		return "prefer-standby"
	case RouteReads:
		return "read"
	}
	return "any"
}

// Routing returns the set's routing.
func (hs *HostSet) Routing() Routing { return hs.cfg.Routing }

// Pick chooses the host for a new server connection, routed by r, of a
// pool logging in as t. Before the first checks it checks every host at
// once.
func (hs *HostSet) Pick(ctx context.Context, t Target, r Routing) (*Host, error) {
	if hs.unchecked() {
		hs.CheckNow(ctx, t)
	}
	hs.mu.Lock()
	defer hs.mu.Unlock()
	hosts := hs.routeLocked(r)
	if len(hosts) == 0 {
		return nil, &ErrNoHost{hs.cfg.Name, r}
	}
	switch hs.cfg.Balance {
	case BalanceFirst:
		return hosts[0], nil
	case BalanceLeastBusy:
		best := hosts[0]
		for _, h := range hosts[1:] {
			if h.conns.Load() < best.conns.Load() {
				best = h
			}
		}
		return best, nil
	}
	hs.rr++
	return hosts[hs.rr%len(hosts)], nil
}

// unchecked reports whether some host has never been checked.
func (hs *HostSet) unchecked() bool {
	for _, h := range hs.hosts {
		h.mu.Lock()
		st := h.state
		h.mu.Unlock()
		if st == HostUnknown {
			return true
		}
	}
	return false
}

func contains(hosts []*Host, h *Host) bool {
	for _, x := range hosts {
		if x == h {
			return true
		}
	}
	return false
}

func hostName(h *Host) string {
	if h == nil {
		return "(none)"
	}
	return h.Spec.addr()
}
