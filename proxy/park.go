package proxy

// Parking idle clients.
//
// A logged-in client costs a goroutine while it waits for its next query,
// and a goroutine's stack is most of what an idle client costs. A client
// that has held no server for parkAfter is parked: its goroutine ends, and
// its socket waits in an epoll set of mux's own (poller, park_linux.go);
// when the socket turns readable, or mux must end the session, a new
// goroutine takes the session up where it stopped. Busy clients never park,
// so the relay's hot path is unchanged.
//
// A client's goroutine is blocked in a read when it is idle; the sweeper
// asks it to park by moving its read deadline into the past. What the
// goroutine then does, and who owns the session, follows parkState:
//
//	running --sweeper--> asked --goroutine--> parked (no goroutine)
//	   ^                   |                     |
//	   +----goroutine------+                     |
//	   +----------poller or wake (one CAS)-------+
//
// Only the goroutine that moves a session out of parked (readable socket,
// terminate, idle timeout) runs it from then on.

import (
	"errors"
	"os"
	"time"

	"github.com/muxpg/mux/evloop"
)

const (
	running int32 = iota
	parkAsked
	parked
)

const (
	// parkAfter is how long a client must have held no server and sent
	// nothing before it is parked.
	parkAfter = time.Second
	// sweepEvery is how often the sweeper looks for clients to park and
	// for parked clients whose client_idle_timeout has passed.
	sweepEvery = 500 * time.Millisecond
)

// errParked ends a relay loop whose session was parked: the goroutine
// leaves, the session lives on.
var errParked = errors.New("client parked")

// readFailed decides what a failed client read means: a park request, a
// deadline that is not (or no longer) the client's idle timeout, or the end
// of the session. It returns errParked when the session was parked, nil to
// read again, or err.
func (c *clientConn) readFailed(err error) error {
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		return err
	}
	if c.park.state.Load() == parkAsked && c.tryPark() {
		return errParked
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	dl := c.park.idleDeadline
	if !dl.IsZero() && !time.Now().Before(dl) {
		return err // client_idle_timeout or idle_transaction_timeout
	}
	// A park request that found the client busy, or that raced with a
	// new idle deadline: put the client's own deadline back.
	c.setIdleDeadline(dl)
	c.park.state.Store(running)
	return nil
}

// tryPark parks the session if it is still idle: nothing buffered or half
// read, no server, not ending.
func (c *clientConn) tryPark() bool {
	if c.in.bp != nil || c.in.fr.Mid() || c.in.raw == nil {
		return false
	}
	c.mu.Lock()
	idle := c.idleLocked()
	if idle {
		c.trk.Trim() // scratch space a parked client need not keep
	}
	c.mu.Unlock()
	if !idle {
		return false
	}
	return c.p.poller.park(c)
}

// idleLocked reports whether the client holds no server and is neither
// waiting for one nor ending. c.mu held.
func (c *clientConn) idleLocked() bool {
	return c.server == nil && !c.gone && !c.waiting && !c.pin.checking
}

// resume runs a session taken out of parked on a new goroutine.
func (c *clientConn) resume() {
	c.p.poller.forget(c)
	c.mu.Lock()
	c.setIdleDeadline(c.park.idleDeadline) // the park request left one in the past
	c.mu.Unlock()
	c.run()
}

// wake takes a parked session out of its epoll set so that its goroutine
// can end it (terminate, idle timeout). A session that is not parked is
// left to its goroutine.
func (c *clientConn) wake() {
	if c.loopDriven() {
		c.lc.loop.Post(c, evloop.Event{Kind: evWake})
		return
	}
	if c.park.state.CompareAndSwap(parked, running) {
		go c.resume()
	}
}

// startSweeper starts the sweeper with the first pool or relayed client.
func (p *Proxy) startSweeper() {
	p.sweepMu.Lock()
	defer p.sweepMu.Unlock()
	if p.sweep.done != nil || p.sweep.ended {
		return
	}
	p.sweep.stop, p.sweep.done = make(chan struct{}), make(chan struct{})
	go p.sweepLoop(p.sweep.stop, p.sweep.done)
}

// stopParking stops the sweeper and the poller for good (Shutdown, once
// every client is gone).
func (p *Proxy) stopParking() {
	p.sweepMu.Lock()
	stop, done := p.sweep.stop, p.sweep.done
	p.sweep.stop = nil // Shutdown may run twice
	p.sweep.ended = true
	p.sweepMu.Unlock()
	if stop != nil {
		close(stop)
		<-done
	}
	p.poller.stop()
}

// sweepLoop asks idle clients to park, ends the waits of clients whose
// idle deadline has passed, and drops pools left idle. It runs every
// sweepEvery until stop is closed.
func (p *Proxy) sweepLoop(stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	t := time.NewTimer(p.sweepInterval())
	defer t.Stop()
	var clients []*clientConn
	past := time.Unix(1, 0)
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			t.Reset(p.sweepInterval())
		}
		clients = p.loggedInClients(clients[:0])
		now := time.Now()
		snap := p.snapshot()
		for _, c := range clients {
			c.mu.Lock()
			due, dueSrv := c.dueLocked(snap, now) // reuse.go
			last := c.core.LastRequest()
			if last.Before(c.connected) {
				last = c.connected
			}
			free := c.park.can && c.idleLocked()
			// Parked once two sweeps in a row saw it without a server and
			// it sent nothing for parkAfter.
			idle := free && c.park.idleSeen && now.Sub(last) >= parkAfter
			c.park.idleSeen = free
			expired := !c.park.idleDeadline.IsZero() && !now.Before(c.park.idleDeadline)
			notice := c.sweepNoticeLocked() // waitnotice.go
			c.mu.Unlock()
			if notice != nil {
				notice.due(now, true)
			}
			if due != endNone {
				c.endDue(due, dueSrv)
			}
			if c.loopDriven() {
				// The loop holds an idle client at no cost; an expired
				// deadline is its to act on.
				if expired {
					c.wake()
				}
				continue
			}
			switch c.park.state.Load() {
			case running:
				if expired {
					// A backstop: the deadline itself may have been
					// overwritten by a racing park request.
					_ = c.conn.SetReadDeadline(past)
				} else if idle && c.park.state.CompareAndSwap(running, parkAsked) {
					_ = c.conn.SetReadDeadline(past)
				}
			case parkAsked:
				// Still asked a sweep later: a new idle deadline replaced
				// the request. Ask again (a spurious deadline is harmless).
				if idle {
					_ = c.conn.SetReadDeadline(past)
				}
			case parked:
				if expired {
					c.wake()
				}
			}
		}
		clear(clients)
		p.dropIdlePools(now)
		p.logStats(now)
	}
}

// sweepInterval is sweepEvery, or query_wait_notify when that is shorter,
// so that a loop client's NOTICEs (which the sweep sends) come in time.
func (p *Proxy) sweepInterval() time.Duration {
	if d := p.config().QueryWaitNotify.D(); d > 0 && d < sweepEvery {
		return d
	}
	return sweepEvery
}

// ParkedClients is the number of idle clients that hold no goroutine:
// parked ones (the goroutine driver) and the idle clients of the event
// loops, which never have one.
func (p *Proxy) ParkedClients() int {
	n := p.poller.count()
	for _, c := range p.loggedInClients(nil) {
		if !c.loopDriven() {
			continue
		}
		c.mu.Lock()
		if c.idleLocked() {
			n++
		}
		c.mu.Unlock()
	}
	return n
}

// loggedInClients appends every logged-in client to dst.
func (p *Proxy) loggedInClients(dst []*clientConn) []*clientConn {
	p.keysMu.Lock()
	defer p.keysMu.Unlock()
	for _, c := range p.keys {
		dst = append(dst, c)
	}
	return dst
}
