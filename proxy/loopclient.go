package proxy

// A client driven by an event loop (workers > 0, plain TCP).
//
// The loop reads the client's socket when it turns readable and runs the
// same relay (process / processTracked) the goroutine driver runs; the
// replies come back on the loop too, when the server is one the loop
// reads. Nothing on the loop may block, so every step that could is a
// state of its own:
//
//	          readable: read, process
//	        +-------------------------+
//	        v                         |
//	    lcReading --no idle server--> lcWaiting --granted--> lcReading
//	        |                             |
//	        |  blocking step (connect, parameter sync, state check,
//	        |  LISTEN, a server write that would block)
//	        +-----------> lcOffloaded --done--> lcReading
//	        |
//	        +--- EOF, error, Terminate, timeout ---> lcEnded
//
// lcOffloaded runs the rest of the buffered input on a goroutine with the
// blocking code of the goroutine driver; the loop does not read the client
// meanwhile. Independently of these states, a reply the client's socket
// does not take at once is finished by a goroutine (flushing); until it
// has, the loop reads neither the client nor the server whose reply it is
// (back-pressure), and buffers nothing more.

import (
	"errors"
	"io"
	"net"
	"os"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/muxpg/mux/evloop"

	"github.com/muxpg/mux/internal/rawio"
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
)

// lcState is where a loop-driven client is.
type lcState uint8

const (
	lcReading   lcState = iota // the loop reads and relays the client
	lcWaiting                  // queued for a server (pool.AcquireFunc)
	lcOffloaded                // a goroutine runs a blocking step
	lcEnded                    // the session is over (or ending on a goroutine)
)

var (
	// errWaitServer stops processing: the client was queued for a server.
	errWaitServer = errors.New("waiting for a server")
	// errOffload stops processing: the next step may block.
	errOffload = errors.New("offload to a goroutine")
	// errInFlight stops processing: the rest of it runs on a goroutine
	// already (offloadTail).
	errInFlight = errors.New("processing goes on off the loop")
)

// loopClient is a loop-driven client's driver state. Fields are owned by
// the loop's goroutine unless marked.
type loopClient struct {
	loop   *evloop.Loop
	state  lcState
	masked bool // the socket is out of the loop's set
	added  bool // the loop has taken the client up (Started)
	// onLoop is true while the loop runs the client's input; false while
	// an offloaded goroutine does (set before it starts, reset on evBack).
	onLoop bool
	// flushing is set while replies wait in out for a goroutine to write
	// them (any goroutine may read it; clientout.go).
	flushing atomic.Bool
	out      outQueue
	// soutBusy is set while sout holds bytes for the client's server:
	// a reply that looks like a clean end then must not pool the server
	// (a COPY refused mid-stream), read by the server's loop.
	soutBusy atomic.Bool
	waiter   *pool.Waiter
	ticket   gateTicket  // held from the gate through the wait
	since    time.Time   // when the wait for a server began
	notice   *waitNotice // query_wait_notify's NOTICEs, made at the first wait
	adopt    *pool.Server
	turn     bool    // the wait was handed free capacity: connect
	sout     *[]byte // server bytes the server's socket did not take yet
	soutS    *pool.Server

	// The raw read and write steps, bound once (a closure or method value
	// made per call would allocate), and the write step's state.
	readStep, writeStep func(fd uintptr)
	wb                  []byte
	wn                  int
	werr                error
	// The same for writes to the server (ctlServerWrite): the client's,
	// not the server's, since the server is the next client's as soon as
	// its reply has been read.
	serverStep func(fd uintptr)
	swb        []byte
	swn        int
	swerr      error
}

// onLoop reports whether the caller runs c's input on c's loop.
func (c *clientConn) onLoop() bool { return c.lc != nil && c.lc.onLoop }

// loopDriven reports whether an event loop drives c (else a goroutine
// does; c.lc may still hold its output queue).
func (c *clientConn) loopDriven() bool { return c.lc != nil && c.lc.loop != nil }

// newLoopClient returns the loop state of a client that loop l drives, or,
// with l nil, of one that only has the output queue (its servers may be
// read by loops: TLS clients, clients of servers reached over TLS that
// fell back to plain TCP).
func (c *clientConn) newLoopClient(l *evloop.Loop) *loopClient {
	lc := &loopClient{loop: l}
	lc.readStep, lc.writeStep, lc.serverStep = c.ctlRead, c.ctlWrite, c.ctlServerWrite
	return lc
}

// startLoop hands a logged-in client to its loop.
func (c *clientConn) startLoop() {
	c.lc.onLoop = true
	c.lc.loop.Add(c.id, c)
}

// Events posted to a loop-driven client (evloop.Event.Kind).
const (
	evWake    uint8 = iota // the client may have to end (terminate, idle timeout)
	evGrant                // the wait for a server ended (S, Err)
	evBack                 // offloaded work is done (Err)
	evFlushed              // a slow write to the client finished
	evDetach               // leave for a successor process if idle (handover.go)
)

// Control implements evloop.Conn.
func (c *clientConn) Control(f func(fd uintptr)) error { return c.in.raw.Control(f) }

// Started implements evloop.Conn: the loop drives c from now on.
func (c *clientConn) Started(err error) {
	c.lc.added = true
	if err != nil {
		c.loopEnd(err)
		return
	}
	c.Readable()
}

// Handle implements evloop.Conn.
func (c *clientConn) Handle(ev evloop.Event) {
	switch ev.Kind {
	case evWake:
		c.loopWake()
	case evGrant:
		c.loopGranted(ev.S, ev.Err)
	case evBack:
		c.loopBack(ev.Err)
	case evFlushed:
		c.loopFlushed()
	case evDetach:
		c.loopDetach()
	}
}

// loopMask takes the client's socket out of the loop's set (on true) or
// puts it back.
func (c *clientConn) loopMask(on bool) {
	lc := c.lc
	if lc.masked == on {
		return
	}
	if c.lc.loop.Watch(c.id, c.in.raw.Control, !on) || on {
		lc.masked = on
		return
	}
	// The socket is closed: the session ends.
	c.loopEnd(net.ErrClosed)
}

// loopResume puts a client back to reading after a wait or an offload.
func (c *clientConn) loopResume() {
	c.lc.state = lcReading
	if c.isGone() {
		// Terminated meanwhile: its socket left the set unheard.
		c.loopEnd(net.ErrClosed)
		return
	}
	c.loopFlushed()
}

// offload runs the client's next steps on a goroutine.
func (c *clientConn) offload() { c.offloadTail(c.offloaded) }

// offloadTail runs the rest of a processing step on a goroutine, which
// hands the client back when it is done.
func (c *clientConn) offloadTail(rest func() error) {
	lc := c.lc
	lc.state = lcOffloaded
	lc.onLoop = false
	go func() {
		lc.loop.Post(c, evloop.Event{Kind: evBack, Err: rest()})
	}()
}

// offloaded is the goroutine half of offload: the blocking steps, then the
// rest of the buffered input.
func (c *clientConn) offloaded() error {
	lc := c.lc
	if s := lc.adopt; s != nil {
		lc.adopt = nil
		if _, err := c.adopt(s, lc.since); err != nil {
			return err
		}
	}
	if bp := lc.sout; bp != nil {
		lc.sout = nil
		s := lc.soutS
		lc.soutS = nil
		err := s.Write(*bp)
		wire.PutBuf(bp)
		lc.soutBusy.Store(false)
		if err != nil {
			return wire.Fatal(wire.CodeConnectionFailure, "server connection lost: %v", err)
		}
	}
	err := c.offloadedInput()
	if lc.turn {
		// Handed free capacity it did not use (answered without a server,
		// or ended): the next waiter may connect instead.
		lc.turn = false
		c.acqPool().PassTurn()
	}
	return err
}

// offloadedInput runs the buffered input on the offload's goroutine.
func (c *clientConn) offloadedInput() error {
	if c.in.bp == nil {
		return nil
	}
	process := c.process
	if c.track {
		process = c.processTracked
	}
	return process()
}

// loopBack ends an offload.
func (c *clientConn) loopBack(err error) {
	lc := c.lc
	lc.onLoop = true
	if err != nil {
		c.loopEnd(err)
		return
	}
	c.loopResume()
}

// loopWake looks at a client something outside the loop may have ended:
// terminate closed its socket, or the sweeper saw its idle deadline pass.
func (c *clientConn) loopWake() {
	lc := c.lc
	if !lc.added {
		return // still logging in: its own goroutine ends it
	}
	switch lc.state {
	case lcEnded, lcOffloaded:
		return // the offload's end looks again
	case lcWaiting:
		if !c.isGone() || !c.acqPool().CancelWait(lc.waiter) {
			return
		}
		c.p.admin.done(lc.ticket)
		c.mu.Lock()
		c.waiting = false
		c.mu.Unlock()
		c.loopEnd(net.ErrClosed)
		return
	}
	c.mu.Lock()
	dl := c.park.idleDeadline
	c.mu.Unlock()
	if !dl.IsZero() && !time.Now().Before(dl) {
		c.loopEnd(os.ErrDeadlineExceeded)
		return
	}
	if c.isGone() {
		c.loopEnd(net.ErrClosed)
		return
	}
	c.Readable()
}

// loopEnd ends the session: the loop forgets the client, and a goroutine
// does what ending may wait for (ROLLBACK, the error to the client).
func (c *clientConn) loopEnd(err error) {
	lc := c.lc
	if lc.state == lcEnded {
		return
	}
	lc.state = lcEnded
	if !lc.masked {
		c.loopMask(true)
	}
	lc.loop.Forget(c.id)
	sout, soutS := lc.sout, lc.soutS
	lc.sout, lc.soutS = nil, nil
	if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
		err = io.EOF
	}
	go func() {
		if sout != nil {
			// What the client sent before it left (a COMMIT, say) still
			// reaches its server, as with the goroutine driver.
			_ = soutS.Write(*sout)
			wire.PutBuf(sout)
			lc.soutBusy.Store(false)
		}
		c.end(err)
	}()
}

// loopFlushed reads a reading client again once nothing it is owed waits
// to be written (after a flush, a wait or an offload).
func (c *clientConn) loopFlushed() {
	lc := c.lc
	if lc.state != lcReading || lc.flushing.Load() {
		return // a flush under way calls again when it ends
	}
	if lc.masked {
		c.loopMask(false)
	}
	if lc.state == lcReading {
		// Input read before the flush (a grant may have come meanwhile)
		// may hold whole messages; the socket may say nothing more.
		c.loopProcess()
	}
}

// ctlWrite is tryWrite's step under RawConn.Control: write what the
// client's socket takes.
func (c *clientConn) ctlWrite(fd uintptr) {
	lc := c.lc
	lc.wn, lc.werr = rawio.WriteAvailable(fd, lc.wb)
	if lc.werr != nil {
		lc.werr = &net.OpError{Op: "write", Net: "tcp", Err: lc.werr}
	}
}

// end is the end of a session: what run does after the relay.
func (c *clientConn) end(err error) {
	c.finish(err)
	c.release(c.park.accepted)
}

// release ends what a leaving client holds here once its session is over
// (end), or it failed to settle in or left for a successor (handover.go):
// its prepared statements' counts, its cancel key, its pool and its
// socket; accepted is the connection as accepted, for connDone.
func (c *clientConn) release(accepted net.Conn) {
	if c.track {
		c.forgetStatements()
	}
	c.p.unregister(c)
	c.releasePool()
	c.conn.Close()
	c.p.connDone(accepted)
}
