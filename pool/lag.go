package pool

// Replica lag (max_replica_lag): each check also reads WAL positions, and
// a replica whose replay lags more than HostSetConfig.MaxLag serves no
// routing until it catches up.
//
// The lag is the age of the last transaction the replica replayed, but
// only while its replay is behind: behind the primary's position as of
// the primary's previous check (a check ago, so a replica that keeps up
// is never behind a position read after its own), or, while no primary
// answers, behind what the replica has received. A replica that has
// replayed everything lags by nothing, however long the primary has been
// idle (the replay timestamp alone would grow then).

import (
	"context"
	"fmt"
	"strconv"
	"time"
)

// lagQuery reads, on a primary, its WAL position; on a replica, its
// replay and receive positions and the age of its last replayed
// transaction in seconds. Positions are bytes since 0/0.
const lagQuery = `SELECT coalesce((CASE WHEN pg_catalog.pg_is_in_recovery() THEN pg_catalog.pg_last_wal_replay_lsn()
 ELSE pg_catalog.pg_current_wal_lsn() END - '0/0'::pg_lsn)::text, ''),
 coalesce((pg_catalog.pg_last_wal_receive_lsn() - '0/0'::pg_lsn)::text, ''),
 coalesce(extract(epoch FROM now() - pg_catalog.pg_last_xact_replay_timestamp())::text, '')`

// walSample is what lagQuery found on one host.
type walSample struct {
	ok      bool          // the query answered
	lsn     uint64        // a primary's position; a replica's replay position
	receive uint64        // a replica's receive position (0: unknown)
	age     time.Duration // a replica's last replayed transaction's age
}

// probeWAL runs lagQuery on s; a failure (a user without the right) only
// leaves the lag unknown.
func probeWAL(ctx context.Context, s *Server) walSample {
	res, err := s.Exec(ctx, lagQuery)
	if err != nil || res.Err != nil || len(res.Rows) != 1 || len(res.Rows[0]) != 3 {
		return walSample{}
	}
	row := res.Rows[0]
	lsn, err := strconv.ParseUint(row[0], 10, 64)
	if err != nil {
		return walSample{}
	}
	rcv, _ := strconv.ParseUint(row[1], 10, 64)
	age, _ := strconv.ParseFloat(row[2], 64)
	return walSample{ok: true, lsn: lsn, receive: rcv, age: time.Duration(max(age, 0) * float64(time.Second))}
}

// hostLag is a host's lag as of its last check.
type hostLag struct {
	known bool
	lag   time.Duration
	bytes uint64
}

// notePrimaryWAL records the position a host answering as primary
// reported, unless another host holds the office.
func (hs *HostSet) notePrimaryWAL(h *Host, smp walSample) {
	hs.mu.Lock()
	if smp.ok && (hs.primary == nil || hs.primary == h) {
		hs.plsnOld, hs.plsn = hs.plsn, smp.lsn
	}
	hs.mu.Unlock()
}

// lagOf computes a replica's lag from its sample.
func (hs *HostSet) lagOf(smp walSample) hostLag {
	if !smp.ok {
		return hostLag{}
	}
	hs.mu.Lock()
	ref, now := hs.plsnOld, hs.plsn
	if hs.primary == nil || ref == 0 {
		ref, now = smp.receive, smp.receive
	}
	hs.mu.Unlock()
	l := hostLag{known: true}
	if now > smp.lsn {
		l.bytes = now - smp.lsn
	}
	if ref > smp.lsn {
		l.lag = smp.age
	}
	return l
}

// setLagLocked records h's lag and whether it now lags too much; it
// reports a change of the latter. h.mu held.
func (hs *HostSet) setLagLocked(h *Host, l hostLag) (changed bool) {
	h.lag = l
	why := ""
	if limit := hs.cfg.MaxLag; limit > 0 && l.known && l.lag > limit {
		why = fmt.Sprintf("lagging %s > max_replica_lag %s", l.lag.Round(time.Millisecond), limit)
	}
	changed = (why == "") != (h.lagging == "")
	h.lagging = why
	return changed
}
