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
