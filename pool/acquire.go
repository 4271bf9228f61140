package pool

// Lending servers: waiting for one (FIFO, bounded by a context or a
// deadline that one timer per pool enforces), connecting when there is
// room, checking one that idled too long.

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// Acquire lends a server, waiting in FIFO order for one to be free until ctx
// ends. The caller must hand it back with Release.
func (p *Pool) Acquire(ctx context.Context) (*Server, error) {
	return p.acquire(waitLimit{ctx: ctx, since: time.Now()})
}

// AcquireTimeout is Acquire bounded by a timeout (0: none) rather than a
// context: a client's wait for a server, on every transaction when the
// pool is busy, allocates nothing and arms no timer of its own (the
// pool's wait timer ends it).
func (p *Pool) AcquireTimeout(d time.Duration) (*Server, error) {
	now := time.Now()
	l := waitLimit{since: now}
	if d > 0 {
		l.deadline = now.Add(d)
	}
	return p.acquire(l)
}

// waitLimit bounds an Acquire: by a context, or by a deadline (zero: none).
// since is when the caller began to wait (for the reserve pool).
type waitLimit struct {
	ctx      context.Context
	deadline time.Time
	since    time.Time
}

// ended reports whether the limit has passed.
func (l waitLimit) ended() bool {
	if l.ctx != nil {
		return l.ctx.Err() != nil
	}
	return !l.deadline.IsZero() && !time.Now().Before(l.deadline)
}

// context returns a context ending with the limit, for dialling and the
// check query.
func (l waitLimit) context() (context.Context, context.CancelFunc) {
	switch {
	case l.ctx != nil:
		return l.ctx, func() {}
	case l.deadline.IsZero():
		return context.Background(), func() {}
	}
	return context.WithDeadline(context.Background(), l.deadline)
}

// sleep waits d, or until the limit ends (false).
func (l waitLimit) sleep(d time.Duration) bool {
	until := time.Now().Add(d)
	if !l.deadline.IsZero() && l.deadline.Before(until) {
		until = l.deadline
	}
	t := time.NewTimer(time.Until(until))
	defer t.Stop()
	var done <-chan struct{}
	if l.ctx != nil {
		done = l.ctx.Done()
	}
	select {
	case <-t.C:
	case <-done:
	}
	return !l.ended()
}

// await blocks until the waiter is handed something, or ctx (if any) ends
// (ok false). A deadline is the pool's wait timer's to enforce.
func (w *waiter) await(ctx context.Context) (s *Server, ok bool) {
	if ctx == nil {
		return <-w.ch, true
	}
	select {
	case s = <-w.ch:
		return s, true
	case <-ctx.Done():
		return nil, false
	}
}

func (p *Pool) acquire(l waitLimit) (*Server, error) {
	return p.acquireFrom(l, false)
}

// AcquireTurn is Acquire for a caller whose AcquireFunc wait was handed
// free capacity (nil server, nil error): it may connect even with others
// queued behind it. It waits until deadline (zero: no limit), the one
// its first wait had; since is when that wait began.
func (p *Pool) AcquireTurn(since, deadline time.Time) (*Server, error) {
	return p.acquireFrom(waitLimit{deadline: deadline, since: since}, true)
}

// PassTurn hands free capacity that an AcquireFunc waiter was given, and
// will not use, to the next waiter.
func (p *Pool) PassTurn() { p.wakeOne() }

func (p *Pool) acquireFrom(l waitLimit, turn bool) (*Server, error) {
	// turn is set once this caller was woken for free capacity, or failed
	// to connect: it may then connect even with others still queued, else
	// a woken waiter would queue again behind them and nobody connect.
	for {
		s, err := p.acquireOnce(l, &turn)
		if err != nil {
			return nil, err
		}
		if s == nil {
			continue
		}
		if !p.needsCheck(s) {
			return s, nil
		}
		ctx, cancel := l.context()
		_, err = s.ExecIdle(ctx, p.Config().CheckQuery)
		cancel()
		if err == nil {
			return s, nil
		}
		p.log.Info("server failed check query, closing", zap.Uint64("server_id", s.ID), zap.Error(err))
		s.MarkBroken()
		p.Release(s)
		if l.ended() {
			return nil, ErrWaitTimeout
		}
	}
}

func (p *Pool) needsCheck(s *Server) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.needsCheckLocked(s)
}

func (p *Pool) needsCheckLocked(s *Server) bool {
	cfg := &p.cfg
	if cfg.CheckQuery == "" {
		return false
	}
	s.mu.Lock()
	idleFor := time.Since(s.lastUsed)
	fresh := s.lastUsed.IsZero()
	s.mu.Unlock()
	return !fresh && idleFor >= cfg.CheckDelay
}

// TryAcquire lends an idle server if one is ready now, without waiting or
// connecting; nil otherwise. A server idle past CheckDelay is not taken
// here (it needs its check query): Acquire does that.
func (p *Pool) TryAcquire() *Server {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed || p.waiters.n > 0 {
		return nil
	}
	if len(p.idle) == 0 {
		return nil
	}
	i := p.idleNextLocked()
	s := p.idle[i]
	if s.Broken() || p.expired(s) || p.needsCheckLocked(s) {
		return nil
	}
	p.takeIdleLocked(i)
	p.inflight[s] = struct{}{}
	return s
}

// acquireOnce returns a server, or nil to ask the caller to try again.
func (p *Pool) acquireOnce(l waitLimit, turn *bool) (*Server, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrClosed
	}
	for len(p.idle) > 0 {
		s := p.takeIdleLocked(p.idleNextLocked())
		if s.Broken() || p.expired(s) {
			p.dropLocked(s)
			p.mu.Unlock()
			s.close()
			p.mu.Lock()
			continue
		}
		p.inflight[s] = struct{}{}
		p.mu.Unlock()
		return s, nil
	}
	if p.waiters.n == 0 || *turn {
		taken, full, ok := p.growLocked(p.sizeFor(l.since))
		if ok {
			*turn = true
			p.mu.Unlock()
			return p.connectFor(l, taken)
		}
		if full != nil {
			p.mu.Unlock()
			if full.evict(p) {
				return nil, nil // room made: try again
			}
			p.mu.Lock()
			if p.closed || len(p.idle) > 0 || p.blockedLocked(full) {
				p.mu.Unlock()
				return nil, nil // things changed meanwhile: try again
			}
		}
	}
	w := waiterPool.Get().(*waiter)
	w.since = l.since
	if w.since.IsZero() {
		w.since = time.Now()
	}
	if l.ctx == nil {
		w.deadline = l.deadline
	}
	if p.waiters.n == 0 {
		p.inOrder, p.lastDeadline = true, time.Time{}
	}
	p.waiters.push(w)
	if !w.deadline.IsZero() {
		if w.deadline.Before(p.lastDeadline) {
			p.inOrder = false
		} else {
			p.lastDeadline = w.deadline
		}
		p.armWaitTimerLocked(w.deadline)
	}
	p.armReserveLocked()
	p.mu.Unlock()
	s, ok := w.await(l.ctx)
	if ok {
		expired := w.expired
		w.expired, w.deadline = false, time.Time{}
		waiterPool.Put(w)
		if expired {
			return nil, p.waitErr()
		}
		if s == nil {
			*turn = true // capacity freed for us: connect even if others queue
		}
		return s, nil
	}
	p.mu.Lock()
	if w.queued {
		p.waiters.remove(w)
		p.mu.Unlock()
		waiterPool.Put(w)
		return nil, p.waitErr()
	}
	p.mu.Unlock()
	// Handed something just as we gave up: give it back.
	s = <-w.ch
	waiterPool.Put(w)
	if s != nil {
		p.Release(s)
	} else {
		p.wakeOne()
	}
	return nil, p.waitErr()
}

// connectFor connects a server for an acquire that counted one more
// (taken: the limits that count it); nil, nil asks to try again.
func (p *Pool) connectFor(l waitLimit, taken []*Limit) (*Server, error) {
	p.mu.Lock()
	wait := time.Until(p.retryAt)
	p.mu.Unlock()
	if wait > 0 && !l.sleep(wait) {
		p.connectFailed(nil, taken)
		return nil, p.waitErr()
	}
	ctx, cancel := l.context()
	s, err := p.connect(ctx)
	cancel()
	if err != nil {
		p.connectFailed(err, taken)
		if !Retryable(err) {
			return nil, err
		}
		if l.ended() {
			return nil, p.waitErr()
		}
		return nil, nil
	}
	p.mu.Lock()
	s.limits = taken
	p.inflight[s] = struct{}{}
	p.backoff, p.retryAt, p.lastErr = 0, time.Time{}, nil
	p.mu.Unlock()
	return s, nil
}

// armWaitTimerLocked makes the wait timer fire by at. p.mu held.
func (p *Pool) armWaitTimerLocked(at time.Time) {
	if !p.timerAt.IsZero() && !at.Before(p.timerAt) {
		return // due no later than the new waiter: the common case
	}
	p.timerAt = at
	if p.waitTimer == nil {
		p.waitTimer = time.AfterFunc(time.Until(at), p.expireWaiters)
	} else {
		p.waitTimer.Reset(time.Until(at))
	}
}

// expireWaiters ends the waits whose deadline has passed and re-arms the
// wait timer for the earliest one left. While the deadlines are in queue
// order it stops at the first that is not due; otherwise it looks at every
// waiter.
func (p *Pool) expireWaiters() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.timerAt = time.Time{}
	now := time.Now()
	var next time.Time
	for w := p.waiters.head; w != nil; {
		after := w.next
		switch {
		case w.deadline.IsZero():
		case !now.Before(w.deadline):
			p.waiters.remove(w)
			w.expired = true
			w.hand(nil, p.lastErrLocked())
		case p.inOrder:
			next, after = w.deadline, nil // the rest are due later
		case next.IsZero() || w.deadline.Before(next):
			next = w.deadline
		}
		w = after
	}
	if !next.IsZero() && !p.closed {
		p.armWaitTimerLocked(next)
	}
	if p.waiters.n == 0 {
		p.unblockLocked() // nobody left waiting for a shared limit's room
	}
}

// waitErr explains a wait that ran out: the last connection error if the
// pool could not connect, else a plain timeout.
func (p *Pool) waitErr() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastErrLocked()
}

func (p *Pool) lastErrLocked() error {
	if p.lastErr != nil {
		return p.lastErr
	}
	return ErrWaitTimeout
}

// LastConnectError is the error of the last failed attempt to connect,
// while no attempt since has succeeded; nil otherwise.
func (p *Pool) LastConnectError() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.lastErr
}

// TemplateNow returns the pool's template if it has a current one at
// hand, without waiting or connecting; nil otherwise.
func (p *Pool) TemplateNow() *Template {
	p.mu.Lock()
	t := p.template
	p.mu.Unlock()
	if t == nil || p.templateStale(t) {
		return nil
	}
	return t
}
