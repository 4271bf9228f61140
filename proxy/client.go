package proxy

// The client-to-server half of a session, in the order a query takes it:
// the client's socket turns readable on its loop (Readable), its bytes
// are read and framed (process; processTracked in tracked.go rewrites
// prepared statements on the way), a server is taken if the client holds
// none (holdServer, loopAttach), and the run is written to the server
// (forward, serverWrite). The way back is reply.go.

import (
	"errors"
	"net"
	"syscall"
	"time"

	"github.com/muxpg/mux/evloop"
	"github.com/muxpg/mux/internal/rawio"
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
	"github.com/muxpg/mux/session"
	"github.com/muxpg/mux/sqllex"
	"go.uber.org/zap"
)

// wholeNone: a session-mode client's messages all stream through (in
// transaction and statement mode the Tracker sees them: tracked.go).
var wholeNone session.TypeSet

// Readable implements evloop.Conn: the client's socket is readable (or
// may be).
func (c *clientConn) Readable() {
	lc := c.lc
	if lc.state != lcReading || lc.flushing.Load() {
		if lc.state != lcEnded {
			c.loopMask(true)
		}
		return
	}
	if err := c.fillNB(); err != nil {
		if err == syscall.EAGAIN {
			return
		}
		c.loopEnd(err)
		return
	}
	c.loopProcess()
}

// loopProcess relays the buffered input.
func (c *clientConn) loopProcess() {
	lc := c.lc
	if c.in.bp == nil {
		return
	}
	process := c.process
	if c.track {
		process = c.processTracked
	}
	err := process()
	switch {
	case err == nil:
		if lc.sout != nil {
			c.offload() // the server's socket is full: finish on a goroutine
		}
	case err == errWaitServer:
		lc.state = lcWaiting
		c.shrinkInput()
	case err == errOffload:
		c.offload()
	case err == errInFlight:
	default:
		c.loopEnd(err)
	}
}

// shrinkInput moves the input of a client that waits for a server, and
// so cannot be read meanwhile, into a buffer of its size: a burst of ten
// thousand clients waiting with a query each holds a few MiB, not 80, and
// the 8 KiB read buffer goes back to the pool for the next client read.
func (c *clientConn) shrinkInput() {
	n := c.in.w - c.in.r
	if n > wire.MaxSmallBuf || cap(*c.in.bp) < wire.SmallBufSize {
		return
	}
	nb := wire.GetSmallBuf(n)
	copy(*nb, (*c.in.bp)[c.in.r:c.in.w])
	wire.PutBuf(c.in.bp)
	c.in.bp, c.in.r, c.in.w = nb, 0, n
}

// fillNB reads what the client sent without waiting: syscall.EAGAIN if
// nothing.
func (c *clientConn) fillNB() error {
	c.compactInput()
	c.in.nread, c.in.rerr = 0, nil
	if err := c.in.raw.Control(c.lc.readStep); err != nil {
		return err
	}
	if c.in.nread > 0 {
		c.in.w += c.in.nread
		return nil
	}
	if c.in.rerr == nil {
		return syscall.EAGAIN
	}
	return c.in.rerr
}

// ctlRead is fillNB's step under RawConn.Control: rawRead without the
// wait.
func (c *clientConn) ctlRead(fd uintptr) {
	if !c.rawRead(fd) {
		c.in.rerr = syscall.EAGAIN
	}
}

// process frames a session-mode client's buffered input and forwards
// whole runs of messages to the server.
func (c *clientConn) process() error {
	pos := c.in.r
	fr0 := c.in.fr
	whole := &wholeNone
	var run session.Run
	for {
		f, err := c.in.fr.Next((*c.in.bp)[pos:c.in.w], whole, c.lim)
		if err != nil {
			if ferr := c.forward((*c.in.bp)[c.in.r:pos], run); ferr != nil {
				return ferr
			}
			return err
		}
		switch {
		case f.Kind == session.Short:
		case f.Kind == session.Partial:
			c.growFor(f.Len, &pos)
		case f.Kind != session.Rest && f.Type == 'X':
			if err := c.forward((*c.in.bp)[c.in.r:pos], run); err != nil {
				return err
			}
			c.in.r = c.in.w
			return errTerminate
		default:
			if f.Kind != session.Rest {
				run.Add(f.Type)
			}
			pos += f.Len
			continue
		}
		break
	}
	err := c.forward((*c.in.bp)[c.in.r:pos], run)
	if err == errWaitServer || err == errOffload {
		// Nothing was forwarded: processed again once a server is there.
		c.in.fr = fr0
		return err
	}
	c.consumed(pos)
	return err
}

// consumed marks the input up to pos processed, and gives the buffer back
// once all of it is.
func (c *clientConn) consumed(pos int) {
	c.in.r = pos
	if c.in.r == c.in.w {
		c.in.r, c.in.w = 0, 0
		wire.PutBuf(c.in.bp)
		c.in.bp = nil
	}
}

// lexOptions describes the client's query text for the SQL lexer.
func (c *clientConn) lexOptions() sqllex.Options {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lexOptionsLocked()
}

func (c *clientConn) lexOptionsLocked() sqllex.Options {
	return sqllex.Options{
		StandardConformingStrings: c.want.v[paramStandardConformingStrings] != "off",
		Encoding:                  sqllex.EncodingByName(c.want.v[paramClientEncoding]),
	}
}

// growFor makes room for a message of total bytes that must be read whole,
// keeping the unprocessed input.
func (c *clientConn) growFor(total int, pos *int) {
	buf := *c.in.bp
	if total <= len(buf)-c.in.r {
		return
	}
	nb := wire.GetBuf(total + (*pos - c.in.r))
	n := copy(*nb, buf[c.in.r:c.in.w])
	*pos -= c.in.r
	c.in.r, c.in.w = 0, n
	wire.PutBuf(c.in.bp)
	c.in.bp = nb
}

// forward writes a run of client messages to the session's server,
// acquiring one first if the client holds none.
func (c *clientConn) forward(data []byte, b session.Run) error {
	if len(data) == 0 {
		return nil
	}
	if c.sink != nil {
		return c.sink(data, b)
	}
	// Checking for a server and counting what this run adds must be one
	// step: the server's read goroutine may release the server between
	// them, and the bytes would then reach a server the client no longer
	// holds.
	s, err := c.holdServer(data)
	if err != nil {
		return err
	}
	c.beginTrialLocked(s) // rwsplit.go
	c.count(b)
	c.mu.Unlock()
	c.stats.bytesIn.Add(int64(len(data)))
	if err := c.serverWrite(s, data); err != nil {
		return wire.Fatal(wire.CodeConnectionFailure, "server connection lost: %v", err)
	}
	return nil
}

// count applies a run's effect on the release state. c.mu must be held.
func (c *clientConn) count(b session.Run) {
	starts, awaits := c.core.Sent(b, time.Now())
	if starts && b.Syncs > 0 {
		c.armQueryTimeout()
	}
	if awaits && !c.park.idleDeadline.IsZero() {
		// idle_transaction_timeout is for a client that sends nothing:
		// not while it waits for its query's result.
		c.setIdleDeadline(time.Time{})
	}
}

// holdServer returns the client's server, attaching one for data (the
// run about to be forwarded) if it holds none, with c.mu locked.
func (c *clientConn) holdServer(data []byte) (*pool.Server, error) {
	for {
		c.mu.Lock()
		if c.onLoop() {
			if c.pin.checking || c.rw.busy() {
				c.mu.Unlock()
				return nil, errOffload // waitBusy blocks
			}
		} else {
			c.waitBusy()
		}
		if s := c.server; s != nil {
			return s, nil
		}
		c.routeLocked(data)
		c.mu.Unlock()
		if c.onLoop() {
			if err := c.loopAttach(); err != nil {
				return nil, err
			}
			continue
		}
		if _, err := c.attach(); err != nil {
			return nil, err
		}
	}
}

// loopAttach takes a server without blocking: an idle one now (nil), or a
// place in the queue (errWaitServer), or errOffload when only the
// blocking path can get one.
func (c *clientConn) loopAttach() error {
	lc := c.lc
	if c.idleTimeoutsOn() {
		c.mu.Lock()
		c.setIdleDeadline(time.Time{})
		c.mu.Unlock()
	}
	ticket, ok := c.p.admin.tryAdmit()
	if !ok {
		return errOffload
	}
	lc.since = time.Now()
	var deadline time.Time
	if d := c.queryWaitTimeout(); d > 0 {
		deadline = lc.since.Add(d)
	}
	if lc.waiter == nil {
		// Made at the first wait: a client that never waits, or only
		// idles, does not pay for it.
		l := lc.loop
		lc.waiter = pool.NewWaiter(func(s *pool.Server, err error) {
			l.Post(c, evloop.Event{Kind: evGrant, S: s, Err: err})
		})
	}
	s, ok := c.acqPool().AcquireFunc(deadline, lc.waiter)
	if !ok {
		c.p.admin.done(ticket)
		return errOffload
	}
	if s == nil {
		lc.ticket = ticket
		c.mu.Lock()
		c.waiting = true
		c.mu.Unlock()
		c.loopNotice(c.acqPool(), lc.since) // waitnotice.go
		return errWaitServer
	}
	c.p.admin.done(ticket)
	return c.loopAdopt(s)
}

// loopGranted ends a wait for a server.
func (c *clientConn) loopGranted(s *pool.Server, err error) {
	lc := c.lc
	lc.notice.stop()
	if lc.state != lcWaiting {
		// Ended meanwhile: what it was handed goes back.
		switch {
		case s != nil:
			c.pool.Release(s)
		case err == nil:
			c.acqPool().PassTurn()
		}
		return
	}
	c.p.admin.done(lc.ticket)
	lc.ticket = gateTicket{}
	c.mu.Lock()
	c.waiting = false
	c.mu.Unlock()
	switch {
	case err != nil:
		c.logger().Info("no server for client", zap.Error(err))
		c.loopEnd(c.poolError(err))
	case s == nil:
		lc.turn = true
		c.offload()
	default:
		if err := c.loopAdopt(s); err == errOffload {
			c.offload()
		} else if err != nil {
			c.loopEnd(err)
		} else {
			c.loopResume()
		}
	}
}

// loopAdopt makes s the client's server, unless that needs a query first.
func (c *clientConn) loopAdopt(s *pool.Server) error {
	c.mu.Lock()
	want := c.want
	c.mu.Unlock()
	if syncSQL(s, want, c.extra) != "" {
		c.lc.adopt = s
		return errOffload
	}
	_, err := c.adopt(s, c.lc.since)
	return err
}

// attach takes a server from the pool for this client and brings its
// settings in line with the client's.
func (c *clientConn) attach() (*pool.Server, error) {
	if c.idleTimeoutsOn() {
		c.mu.Lock()
		c.setIdleDeadline(time.Time{})
		c.mu.Unlock()
	}
	start := time.Now()
	turn := c.lc != nil && c.lc.turn
	if turn {
		// A loop's wait was handed free capacity: connect.
		c.lc.turn = false
		start = c.lc.since
	}
	return c.attachFrom(c.acqPool(), turn, start)
}

// attachFrom takes a server from pl (with turn, the free capacity a
// loop's wait was handed: connect) for a client waiting since start.
func (c *clientConn) attachFrom(pl *pool.Pool, turn bool, start time.Time) (*pool.Server, error) {
	ticket, err := c.admit() // waits while the database is PAUSEd (admin.go)
	if err != nil {
		return nil, err
	}
	defer c.p.admin.done(ticket)
	var s *pool.Server
	if !turn {
		s = pl.TryAcquire()
	}
	if s == nil {
		// No idle server at hand: wait (bounded by query_wait_timeout).
		c.mu.Lock()
		c.waiting = true
		c.mu.Unlock()
		var err error
		notice := c.noticeWhileWaiting(pl, start)
		if turn {
			var deadline time.Time
			if d := c.queryWaitTimeout(); d > 0 {
				deadline = start.Add(d)
			}
			s, err = pl.AcquireTurn(start, deadline)
		} else {
			s, err = pl.AcquireTimeout(c.queryWaitTimeout())
		}
		notice.stop()
		c.mu.Lock()
		c.waiting = false
		c.mu.Unlock()
		if err != nil {
			c.logger().Info("no server for client", zap.Error(err))
			return nil, c.poolError(err)
		}
	}
	return c.adopt(s, start)
}

// adopt makes s, just taken from the pool, the client's server, first
// bringing its settings in line with the client's (one query, which
// blocks; loopAdopt runs it off the loop). start is when the client began
// to wait for it.
func (c *clientConn) adopt(s *pool.Server, start time.Time) (*pool.Server, error) {
	waited := time.Since(start)
	c.stats.waits.Add(1)
	c.stats.waitUs.Add(waited.Microseconds())
	c.stats.obs.PoolWait(waited)
	c.mu.Lock()
	want, refused := c.want, c.refusesServer()
	c.mu.Unlock()
	if refused {
		// Terminated while waiting (KILL, shutdown), or draining between
		// transactions: what it sent must not run.
		c.pool.Release(s)
		return nil, wire.Fatal(wire.CodeAdminShutdown, "terminating connection due to administrator command")
	}
	if q := syncSQL(s, want, c.extra); q != "" {
		if _, err := execReset(s, q); err != nil {
			c.pool.Release(s)
			var we *wire.Error
			if !errors.As(err, &we) {
				return nil, wire.Fatal(wire.CodeConnectionFailure, "server connection lost while applying settings: %v", err)
			}
			e := *we
			e.Severity = "FATAL"
			return nil, &e
		}
		s.Applied = make(map[string]string, len(c.extra))
		for _, e := range c.extra {
			s.Applied[e.Name] = e.Value
		}
		c.mu.Lock()
		c.want.follow(s)
		c.mu.Unlock()
	}
	c.mu.Lock()
	if c.refusesServer() {
		// Marked gone, or draining between transactions, while the
		// server was being made ready: this transaction must not start.
		c.mu.Unlock()
		c.pool.Release(s)
		return nil, wire.Fatal(wire.CodeAdminShutdown, "terminating connection due to administrator command")
	}
	c.server = s
	c.adoptedLocked(s)
	c.core.Attached()
	c.park.idleSeen = false
	c.trk.Reset()
	c.mu.Unlock()
	c.lastBackend.Store(s.KeyPID)
	c.attachSeq.Store(c.p.attachSeq.Add(1))
	s.SetHandler(c)
	return s, nil
}

// serverWrite sends client bytes to s. On the loop a write the socket does
// not take at once is kept (lc.sout) and finished by an offload.
func (c *clientConn) serverWrite(s *pool.Server, b []byte) error {
	lc := c.lc
	if lc == nil || !lc.onLoop {
		return s.Write(b)
	}
	if s.Loop() == nil {
		// A server read by a goroutine (TLS to Postgres) has no raw
		// socket: its write may block, so it is finished off the loop.
		if lc.sout == nil {
			lc.sout = wire.GetBuf(len(b))
			*lc.sout = (*lc.sout)[:0]
			lc.soutS = s
			lc.soutBusy.Store(true)
		}
		*lc.sout = append(*lc.sout, b...)
		return nil
	}
	if lc.sout != nil {
		*lc.sout = append(*lc.sout, b...)
		return nil
	}
	lc.swb, lc.swn, lc.swerr = b, 0, nil
	cerr := s.Control(lc.serverStep)
	n, err := lc.swn, lc.swerr
	lc.swb, lc.swerr = nil, nil
	if err == nil {
		err = cerr
	}
	if err != nil {
		s.MarkBroken()
		return err
	}
	if n < len(b) {
		bp := wire.GetBuf(len(b) - n)
		*bp = append((*bp)[:0], b[n:]...)
		lc.sout, lc.soutS = bp, s
		lc.soutBusy.Store(true)
	}
	return nil
}

// ctlServerWrite is serverWrite's step under RawConn.Control: write what
// the server's socket takes.
func (c *clientConn) ctlServerWrite(fd uintptr) {
	lc := c.lc
	lc.swn, lc.swerr = rawio.WriteAvailable(fd, lc.swb)
	if lc.swerr != nil {
		lc.swerr = &net.OpError{Op: "write", Net: "tcp", Err: lc.swerr}
	}
}
