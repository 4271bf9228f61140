package pool

import (
	"testing"
	"time"
)

func TestReplicaLag(t *testing.T) {
	hs := &HostSet{cfg: HostSetConfig{MaxLag: time.Second, Routing: RoutePrimary}}
	p := &Host{Spec: HostSpec{Host: "p", Port: 1}, set: hs, state: HostUp, role: RolePrimary}
	r := &Host{Spec: HostSpec{Host: "r", Port: 2}, set: hs, state: HostUp, role: RoleStandby}
	hs.hosts = []*Host{p, r}
	old := 5 * time.Second
	cases := []struct {
		what      string
		primary   *Host
		plsn, old uint64
		smp       walSample
		want      hostLag
	}{
		{"no primary, all received replayed", nil, 0, 0, walSample{ok: true, lsn: 100, receive: 100, age: time.Hour}, hostLag{known: true}},
		{"no primary, behind what it received", nil, 0, 0, walSample{ok: true, lsn: 100, receive: 200, age: old}, hostLag{known: true, lag: old, bytes: 100}},
		{"past the primary's position a check ago", p, 300, 150, walSample{ok: true, lsn: 200, receive: 300, age: old}, hostLag{known: true, bytes: 100}},
		{"behind it", p, 300, 150, walSample{ok: true, lsn: 100, receive: 300, age: old}, hostLag{known: true, lag: old, bytes: 200}},
		{"idle primary", p, 300, 300, walSample{ok: true, lsn: 300, receive: 300, age: time.Hour}, hostLag{known: true}},
		{"no sample", p, 300, 300, walSample{}, hostLag{}},
	}
	for _, c := range cases {
		hs.primary, hs.plsn, hs.plsnOld = c.primary, c.plsn, c.old
		if got := hs.lagOf(c.smp); got != c.want {
			t.Errorf("%s: lag %+v, want %+v", c.what, got, c.want)
		}
	}

	hs.primary = p
	if !hs.setLagLocked(r, hostLag{known: true, lag: old}) || r.lagging != "lagging 5s > max_replica_lag 1s" {
		t.Errorf("lagging 5s: reason %q", r.lagging)
	}
	if hs.setLagLocked(r, hostLag{known: true, lag: 2 * time.Second}) {
		t.Error("still lagging reported as a change")
	}
	hs.mu.Lock()
	reads, _ := hs.eligibleForLocked(RouteReads)
	anyHost, _ := hs.eligibleForLocked(RouteAny)
	hs.mu.Unlock()
	if contains(reads, r) || !contains(anyHost, r) {
		t.Errorf("a lagging replica: reads %v, any %v; want only any", reads, anyHost)
	}
	if !hs.setLagLocked(r, hostLag{known: true}) || r.lagging != "" {
		t.Errorf("caught up: reason %q", r.lagging)
	}
	hs.mu.Lock()
	reads, _ = hs.eligibleForLocked(RouteReads)
	hs.mu.Unlock()
	if !contains(reads, r) {
		t.Error("a replica that caught up gets no reads")
	}
	hs.cfg.MaxLag = 0
	if hs.setLagLocked(r, hostLag{known: true, lag: time.Hour}) || r.lagging != "" {
		t.Error("max_replica_lag 0 does not turn the limit off")
	}
}
