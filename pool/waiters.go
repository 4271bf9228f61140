package pool

import (
	"sync"
	"time"
)

// waiter is one Acquire call queued for a server. Waiters are recycled
// (waiterPool): whoever pops a waiter from the queue sends it exactly one
// value, and the waiter has received it before it is put back, so a
// recycled waiter's channel is always empty.
type waiter struct {
	ch         chan *Server // buffered: handing a server over never blocks
	since      time.Time
	deadline   time.Time // AcquireTimeout's limit (zero: none), enforced by the pool's wait timer
	expired    bool      // set before the pool sends nil: the deadline passed
	prev, next *waiter
	queued     bool
	// fn, when set, is called instead of sending on ch (AcquireFunc).
	fn func(*Server, error)
}

// hand gives the waiter what it waited for: a server, or nil with the
// reason (nil: capacity was freed for it).
func (w *waiter) hand(s *Server, err error) {
	if w.fn != nil {
		w.fn(s, err)
		return
	}
	w.ch <- s
}

// A Waiter is a reusable place in a pool's queue for AcquireFunc. One
// Waiter waits once at a time.
type Waiter struct{ w waiter }

// NewWaiter returns a Waiter whose fn receives what AcquireFunc waited
// for: a server; or nil and an error (the deadline passed:
// ErrWaitTimeout or the last connection error; ErrClosed); or nil and nil,
// when capacity was freed for it and it should connect (AcquireTurn). fn is
// called on the goroutine that releases or times out, possibly with the
// pool's lock held: it must only hand the result on, never call the pool.
func NewWaiter(fn func(*Server, error)) *Waiter {
	return &Waiter{w: waiter{fn: fn}}
}

// AcquireFunc lends an idle server now, or queues wt (ok true, s nil) to
// be handed one later. It returns ok false when the caller must wait the
// blocking way (AcquireTimeout): the pool would connect a new server, or
// an idle one is due its check query, or is to be closed.
func (p *Pool) AcquireFunc(deadline time.Time, wt *Waiter) (s *Server, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, false
	}
	if len(p.idle) > 0 && p.waiters.n == 0 {
		i := p.idleNextLocked()
		s := p.idle[i]
		if s.Broken() || p.expired(s) || p.needsCheckLocked(s) {
			return nil, false
		}
		p.takeIdleLocked(i)
		p.inflight[s] = struct{}{}
		return s, true
	}
	if len(p.idle) > 0 || p.total < p.cfg.MaxSize {
		return nil, false
	}
	w := &wt.w
	w.since, w.deadline, w.expired = time.Now(), deadline, false
	if p.waiters.n == 0 {
		p.inOrder, p.lastDeadline = true, time.Time{}
	}
	p.waiters.push(w)
	if !deadline.IsZero() {
		if deadline.Before(p.lastDeadline) {
			p.inOrder = false
		} else {
			p.lastDeadline = deadline
		}
		p.armWaitTimerLocked(deadline)
	}
	p.armReserveLocked()
	return nil, true
}

// CancelWait takes wt out of the queue. It reports false if wt's fn has
// been or is being called (the caller then owns what it is handed).
func (p *Pool) CancelWait(wt *Waiter) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !wt.w.queued {
		return false
	}
	p.waiters.remove(&wt.w)
	return true
}

var waiterPool = sync.Pool{New: func() any { return &waiter{ch: make(chan *Server, 1)} }}

// waitQueue is a FIFO of waiters linked through the waiters themselves, so
// queueing allocates nothing. Guarded by Pool.mu.
type waitQueue struct {
	head, tail *waiter
	n          int
}

func (q *waitQueue) push(w *waiter) {
	w.prev, w.next, w.queued = q.tail, nil, true
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
	q.n++
}

func (q *waitQueue) remove(w *waiter) {
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.prev, w.next, w.queued = nil, nil, false
	q.n--
}

// pop removes and returns the first waiter, or nil.
func (q *waitQueue) pop() *waiter {
	w := q.head
	if w != nil {
		q.remove(w)
	}
	return w
}
