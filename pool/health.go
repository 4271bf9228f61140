package pool

// Host checks: every Interval each host due is checked on a goroutine of
// its own (a host that black-holes traffic holds up only its own check):
// connect, log in, ask its role and timeline, disconnect. A failed host is
// down and checked again after a back-off that starts at Interval and
// doubles up to RetryMax; one answer brings it back.

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"go.uber.org/zap"
)

// roleQuery asks a server whether it is in recovery and which timeline it
// is on. pg_control_checkpoint() gives the timeline of the last
// checkpoint, which on a just-promoted server still names the old one
// until its first checkpoint ends; the name of the current WAL file
// (primaries only) names the new one at once.
const roleQuery = `SELECT pg_catalog.pg_is_in_recovery()::text, CASE WHEN pg_catalog.pg_is_in_recovery()
 THEN (SELECT timeline_id FROM pg_catalog.pg_control_checkpoint())
 ELSE greatest((SELECT timeline_id FROM pg_catalog.pg_control_checkpoint()),
  ('x' || substr(pg_catalog.pg_walfile_name(pg_catalog.pg_current_wal_lsn()), 1, 8))::bit(32)::int) END::text`

// roleQueryNoTimeline is for users that may not read pg_control_checkpoint().
const roleQueryNoTimeline = `SELECT pg_catalog.pg_is_in_recovery()::text, '0'`

// errNoCreds: no pool has connected yet, so mux has no login for checks.
var errNoCreds = errors.New("no login known yet for host checks")

// run checks the hosts every Interval until Close.
func (hs *HostSet) run() {
	t := time.NewTicker(hs.cfg.Interval)
	defer t.Stop()
	for {
		hs.checkDue(time.Now())
		select {
		case <-hs.stop:
			return
		case <-t.C:
		}
	}
}

// checkDue starts a check of every host whose next check is due.
func (hs *HostSet) checkDue(now time.Time) {
	hs.mu.Lock()
	creds := hs.creds
	hosts := hs.hosts
	hs.mu.Unlock()
	if creds == nil {
		return
	}
	for _, h := range hosts {
		h.mu.Lock()
		due := !h.checking && !now.Before(h.nextCheck)
		if due {
			h.checking = true
		}
		h.mu.Unlock()
		if due {
			go hs.checkHost(h, *creds)
		}
	}
}

// CheckNow checks every host not yet checked, at once and in parallel,
// with t's login, and returns when all have answered or failed: the first
// connection of an entry must not wait for the ticker.
func (hs *HostSet) CheckNow(ctx context.Context, t Target) {
	hs.noteTarget(t)
	done := make(chan struct{}, len(hs.hosts))
	n := 0
	for _, h := range hs.hosts {
		h.mu.Lock()
		go1 := !h.checking && h.state == HostUnknown
		if go1 {
			h.checking = true
		}
		h.mu.Unlock()
		if go1 {
			n++
			go func() { hs.checkHost(h, t); done <- struct{}{} }()
		}
	}
	for ; n > 0; n-- {
		select {
		case <-done:
		case <-ctx.Done():
			return
		}
	}
}

// checkHost runs one check of h and records what it found.
func (hs *HostSet) checkHost(h *Host, t Target) {
	ctx, cancel := context.WithTimeout(context.Background(), hs.cfg.Timeout)
	defer cancel()
	role, tl, smp, err := probeRole(ctx, h, t, hs.log)
	if err == nil && role == RolePrimary {
		hs.notePrimaryWAL(h, smp)
	}
	hs.record(h, role, tl, smp, err)
}

// probeRole connects to h, asks its role, timeline and WAL positions
// (lag.go), and disconnects.
func probeRole(ctx context.Context, h *Host, t Target, log *zap.Logger) (Role, uint32, walSample, error) {
	t.Host, t.Port = h.Spec.Host, h.Spec.Port
	s, err := dial(ctx, t, nil, log)
	if err != nil {
		return RoleUnknown, 0, walSample{}, err
	}
	s.startReading(nil)
	defer func() { s.close(); <-s.done }()
	role, tl, err := askRole(ctx, s)
	if err != nil {
		return RoleUnknown, 0, walSample{}, err
	}
	return role, tl, probeWAL(ctx, s), nil
}

// askRole asks s whether it is in recovery, and its timeline.
func askRole(ctx context.Context, s *Server) (Role, uint32, error) {
	res, err := s.Exec(ctx, roleQuery)
	if err == nil && res.Err != nil && res.Err.Code == "42501" {
		res, err = s.Exec(ctx, roleQueryNoTimeline) // no right to read the control file
	}
	switch {
	case err != nil:
		return RoleUnknown, 0, err
	case res.Err != nil:
		return RoleUnknown, 0, res.Err
	case len(res.Rows) != 1 || len(res.Rows[0]) != 2:
		return RoleUnknown, 0, fmt.Errorf("role check returned %d rows", len(res.Rows))
	}
	role := RolePrimary
	if res.Rows[0][0] == "true" {
		role = RoleStandby
	}
	tl, _ := strconv.ParseUint(res.Rows[0][1], 10, 32)
	return role, uint32(tl), nil
}

// record updates h from a check (err nil: it answered role on timeline
// tl, and smp) and elects the primary again.
func (hs *HostSet) record(h *Host, role Role, tl uint32, smp walSample, err error) {
	now := time.Now()
	var lag hostLag
	if err == nil && role == RoleStandby {
		lag = hs.lagOf(smp) // takes hs.mu: before h.mu
	}
	h.mu.Lock()
	h.checking = false
	h.lastCheck = now
	old, oldRole := h.state, h.role
	if err != nil {
		hs.downLocked(h, now, err.Error())
	} else {
		if h.Spec.Fixed != RoleUnknown {
			role = h.Spec.Fixed
		}
		h.state, h.role, h.timeline, h.reason = HostUp, role, tl, ""
		h.backoff, h.nextCheck = 0, now.Add(hs.cfg.Interval)
	}
	if role != RoleStandby || h.role != RoleStandby {
		lag = hostLag{} // a primary, or a host down: no lag
	}
	lagChanged := hs.setLagLocked(h, lag)
	lagging := h.lagging
	changed := old != h.state || oldRole != h.role
	if changed && (h.state == HostDown || old != HostUnknown) {
		h.epoch.Add(1)
	}
	state, reason := h.state, h.reason
	h.mu.Unlock()
	if changed {
		hs.logChange(h, old, state, role, tl, reason)
	}
	if lagChanged {
		hs.logLag(h, lagging)
	}
	if hs.elect() || changed || lagChanged {
		hs.gen.Add(1)
	}
}

// downLocked marks h down and schedules its next check. h.mu held.
func (hs *HostSet) downLocked(h *Host, now time.Time, reason string) {
	h.state, h.reason = HostDown, reason
	if h.backoff == 0 {
		h.backoff = hs.cfg.Interval
	} else {
		h.backoff = min(2*h.backoff, hs.cfg.RetryMax)
	}
	h.nextCheck = now.Add(h.backoff)
}

// connectFailed takes h out when a pool could not reach it (a network
// error, or a server starting or stopping), without waiting for the next
// check.
func (hs *HostSet) connectFailed(h *Host, err error) {
	if !Retryable(err) {
		return // a wrong password is not the host's fault
	}
	h.mu.Lock()
	if h.state == HostDown {
		h.mu.Unlock()
		return
	}
	hs.downLocked(h, time.Now(), "connect: "+err.Error())
	h.epoch.Add(1)
	h.mu.Unlock()
	hs.log.Warn("host down", zap.String("host", h.Spec.addr()), zap.Error(err))
	hs.elect()
	hs.gen.Add(1)
}

func (hs *HostSet) logChange(h *Host, old, state HostState, role Role, tl uint32, reason string) {
	f := []zap.Field{zap.String("host", h.Spec.addr()), zap.Stringer("was", old)}
	if state == HostDown {
		hs.log.Warn("host down", append(f, zap.String("reason", reason))...)
		return
	}
	hs.log.Info("host up", append(f, zap.Stringer("role", role), zap.Uint32("timeline", tl))...)
}

// logLag reports a replica that starts or stops lagging too much.
func (hs *HostSet) logLag(h *Host, why string) {
	if why != "" {
		hs.log.Warn("replica lags: no connections until it catches up", zap.String("host", h.Spec.addr()), zap.String("reason", why))
		return
	}
	hs.log.Info("replica caught up", zap.String("host", h.Spec.addr()))
}

func (sp HostSpec) addr() string { return sp.Host + ":" + strconv.Itoa(sp.Port) }
