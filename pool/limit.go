package pool

// Limits shared by several pools (max_db_connections,
// max_user_connections), and the reserve pool.
//
// A Limit counts the servers of every pool that names it in its Config,
// open or being connected, the read siblings' included. A pool at a full
// limit first closes the longest-idle server of another member pool
// (PgBouncer's eviction); failing that its client waits, in the pool's
// queue as for a pool slot (query_wait_timeout applies), and the pool is
// noted as blocked on the limit. A server of any member that closes
// frees room and wakes one blocked pool's first waiter, which connects;
// and a member's server that would go idle while another member is
// blocked is closed instead, so the room moves where clients wait.
//
// Lock order: Pool.mu before Limit.mu. A Limit never calls into a pool
// with its own lock held; it wakes pools from a goroutine of its own,
// since the pool that frees room holds its lock then.

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// Limit caps the servers of a set of pools together. Safe for concurrent
// use.
type Limit struct {
	mu      sync.Mutex
	max     int // 0: no cap, only counting
	open    int
	members map[*Pool]struct{}
	blocked []*Pool // pools with a waiter that found the limit full, oldest first
	// hot is set while a pool is blocked or the count is above the cap:
	// only then must a released server look further (Release's hot path
	// reads it without the lock).
	hot atomic.Bool
}

// noteLocked updates hot after a change. l.mu held.
func (l *Limit) noteLocked() {
	l.hot.Store(len(l.blocked) > 0 || l.max > 0 && l.open > l.max)
}

// NewLimit returns a limit of max servers (0: none).
func NewLimit(max int) *Limit {
	return &Limit{max: max, members: map[*Pool]struct{}{}}
}

// SetMax changes the cap (reload). A higher one wakes blocked pools; a
// lower one closes servers above it as they come back.
func (l *Limit) SetMax(max int) {
	l.mu.Lock()
	grew := l.max != 0 && (max == 0 || max > l.max)
	n := max - l.max
	if max == 0 {
		n = len(l.blocked)
	}
	l.max = max
	l.noteLocked()
	l.mu.Unlock()
	for ; grew && n > 0; n-- {
		if !l.wake() {
			return
		}
	}
}

// Counts returns the servers counted and the cap (0: none).
func (l *Limit) Counts() (open, max int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.open, l.max
}

// take counts one more server if there is room.
func (l *Limit) take() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.max > 0 && l.open >= l.max {
		return false
	}
	l.open++
	return true
}

// untake gives back what take counted, waking nobody: the caller could
// not use it at once.
func (l *Limit) untake() {
	l.mu.Lock()
	l.open--
	l.noteLocked()
	l.mu.Unlock()
}

// give uncounts a server that closed (or was never made) and wakes a
// blocked pool, if any, from a goroutine: the caller holds a pool's lock.
func (l *Limit) give() {
	l.mu.Lock()
	l.open--
	l.noteLocked()
	wake := len(l.blocked) > 0
	l.mu.Unlock()
	if wake {
		go l.wake()
	}
}

// over reports whether the limit counts more servers than it allows now
// (after a reload lowered it).
func (l *Limit) over() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.max > 0 && l.open > l.max
}

// block notes that p has a waiter held back by the limit, and reports
// whether there is room after all (a server closed meanwhile): the
// caller should try again. p.mu held.
func (l *Limit) block(p *Pool) (room bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !slices.Contains(l.blocked, p) {
		l.blocked = append(l.blocked, p)
		l.noteLocked()
	}
	return l.max == 0 || l.open < l.max
}

// unblock forgets p. p.mu held.
func (l *Limit) unblock(p *Pool) {
	l.mu.Lock()
	l.blocked = slices.DeleteFunc(l.blocked, func(x *Pool) bool { return x == p })
	l.noteLocked()
	l.mu.Unlock()
}

// wanted reports whether a pool other than p waits for room. p.mu held.
func (l *Limit) wanted(p *Pool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, x := range l.blocked {
		if x != p {
			return true
		}
	}
	return false
}

// wake hands room to the first blocked pool that still has a waiter
// (which then connects), moving it to the back; pools without waiters
// are forgotten. It reports whether one was woken.
func (l *Limit) wake() bool {
	l.mu.Lock()
	list := slices.Clone(l.blocked)
	l.mu.Unlock()
	for _, p := range list {
		if p.wakeForLimit(l) {
			l.mu.Lock()
			if i := slices.Index(l.blocked, p); i >= 0 {
				l.blocked = append(slices.Delete(l.blocked, i, i+1), p)
			}
			l.mu.Unlock()
			return true
		}
	}
	return false
}

func (l *Limit) join(p *Pool) {
	l.mu.Lock()
	l.members[p] = struct{}{}
	l.mu.Unlock()
}

func (l *Limit) leave(p *Pool) {
	l.mu.Lock()
	delete(l.members, p)
	l.blocked = slices.DeleteFunc(l.blocked, func(x *Pool) bool { return x == p })
	l.noteLocked()
	l.mu.Unlock()
}

// evict closes the longest-idle server of a member pool other than p,
// and reports whether it found one. No pool lock held.
func (l *Limit) evict(p *Pool) bool {
	l.mu.Lock()
	pools := make([]*Pool, 0, len(l.members))
	for x := range l.members {
		if x != p {
			pools = append(pools, x)
		}
	}
	l.mu.Unlock()
	var oldest *Pool
	var at time.Time
	for _, x := range pools {
		if t, ok := x.oldestIdle(); ok && (oldest == nil || t.Before(at)) {
			oldest, at = x, t
		}
	}
	return oldest != nil && oldest.evictIdle()
}

// oldestIdle returns when the pool's longest-idle server was last used.
func (p *Pool) oldestIdle() (time.Time, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.idle) == 0 {
		return time.Time{}, false
	}
	s := p.idle[0] // LIFO: the front idled longest
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastUsed, true
}

// evictIdle closes the pool's longest-idle server to make room in a
// limit it shares.
func (p *Pool) evictIdle() bool {
	p.mu.Lock()
	if len(p.idle) == 0 {
		p.mu.Unlock()
		return false
	}
	s := p.idle[0]
	p.idle = slices.Delete(p.idle, 0, 1)
	p.dropLocked(s)
	p.mu.Unlock()
	if ce := p.log.Check(zap.DebugLevel, "closing idle server for a shared limit"); ce != nil {
		ce.Write(zap.Uint64("server_id", s.ID))
	}
	s.close()
	return true
}

// wakeForLimit hands the first waiter room that l freed, or, with no
// waiter, stops being blocked on l. Reports whether a waiter was woken.
func (p *Pool) wakeForLimit(l *Limit) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.waiters.n == 0 {
		l.unblock(p)
		return false
	}
	p.wakeLocked()
	return true
}

// unblockLocked stops the pool being blocked on its limits (its queue
// emptied). p.mu held.
func (p *Pool) unblockLocked() {
	for _, l := range p.cfg.Limits {
		if l.hot.Load() {
			l.unblock(p)
		}
	}
}

// growLocked counts one more server, up to size servers in the pool and
// within every limit. It returns the limits that now count it; or ok
// false, with the limit that is full (nil if the pool itself is). p.mu
// held.
func (p *Pool) growLocked(size int) (taken []*Limit, full *Limit, ok bool) {
	if p.total >= size {
		return nil, nil, false
	}
	lims := p.cfg.Limits
	for i, l := range lims {
		if !l.take() {
			for _, t := range lims[:i] {
				t.untake()
			}
			return nil, l, false
		}
	}
	p.total++
	return lims, nil, true
}

// dropLocked uncounts a server leaving the pool. p.mu held.
func (p *Pool) dropLocked(s *Server) {
	p.total--
	giveLimits(s.limits)
	s.limits = nil
}

func giveLimits(lims []*Limit) {
	for _, l := range lims {
		l.give()
	}
}

// limitWantedLocked reports whether s, about to go idle, should close to
// make room for another pool blocked on one of its limits, or because a
// limit is above its cap. p.mu held.
func (p *Pool) limitWantedLocked(s *Server) bool {
	for _, l := range s.limits {
		if l.hot.Load() && (l.over() || l.wanted(p)) {
			return true
		}
	}
	return false
}

// blockedLocked handles a grow refused by the full limit l: it notes the
// pool as blocked and reports whether to try again at once (room
// appeared meanwhile). p.mu held.
func (p *Pool) blockedLocked(l *Limit) (retry bool) {
	return l.block(p)
}

// syncLimits makes the pool a member of the limits of cfg (and no
// longer of those it had). p.mu not held.
func (p *Pool) syncLimits(old, cfg []*Limit) {
	for _, l := range old {
		if !slices.Contains(cfg, l) {
			l.leave(p)
		}
	}
	for _, l := range cfg {
		l.join(p)
	}
}

// sizeFor is the most servers the pool may have for a client waiting
// since since (zero: just arrived): its size, plus the reserve once the
// client has waited ReserveTimeout.
func (p *Pool) sizeFor(since time.Time) int {
	if p.reserveDue(since) {
		return p.cfg.MaxSize + p.cfg.Reserve
	}
	return p.cfg.MaxSize
}

func (p *Pool) reserveDue(since time.Time) bool {
	return p.cfg.Reserve > 0 && p.cfg.ReserveTimeout > 0 && !since.IsZero() && time.Since(since) >= p.cfg.ReserveTimeout
}

// armReserveLocked makes the reserve timer fire when the first waiter
// has waited ReserveTimeout. p.mu held.
func (p *Pool) armReserveLocked() {
	w := p.waiters.head
	if w == nil || p.cfg.Reserve <= 0 || p.cfg.ReserveTimeout <= 0 || p.closed {
		return
	}
	at := w.since.Add(p.cfg.ReserveTimeout)
	if !p.reserveAt.IsZero() && !at.Before(p.reserveAt) {
		return
	}
	p.reserveAt = at
	if p.reserveTimer == nil {
		p.reserveTimer = time.AfterFunc(time.Until(at), p.useReserve)
	} else {
		p.reserveTimer.Reset(time.Until(at))
	}
}

// useReserve runs when the first waiter may have waited ReserveTimeout:
// it connects a server beyond the pool's size, within the reserve, and
// hands it to the first waiter.
func (p *Pool) useReserve() {
	p.mu.Lock()
	p.reserveAt = time.Time{}
	w := p.waiters.head
	if w == nil || p.closed {
		p.mu.Unlock()
		return
	}
	if !p.reserveDue(w.since) {
		p.armReserveLocked()
		p.mu.Unlock()
		return
	}
	taken, full, ok := p.growLocked(p.cfg.MaxSize + p.cfg.Reserve)
	if !ok {
		// Reserve used up, or a limit full (its next free room wakes the
		// waiter, whose wait counts for the reserve).
		if full != nil {
			p.blockedLocked(full)
		}
		p.mu.Unlock()
		return
	}
	timeout, waited := p.cfg.ConnectTimeout, time.Since(w.since)
	p.mu.Unlock()
	p.log.Info("taking a server from the reserve pool", zap.Duration("waited", waited))
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	s, err := p.connect(ctx)
	cancel()
	if err != nil {
		p.connectFailed(err, taken)
		return
	}
	s.limits = taken
	p.mu.Lock()
	p.inflight[s] = struct{}{}
	p.mu.Unlock()
	p.Release(s) // to the first waiter
	p.mu.Lock()
	p.armReserveLocked()
	p.mu.Unlock()
}
