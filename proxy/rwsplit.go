package proxy

// The read/write split (read_write_split, transaction mode): a client
// that holds no server and sends a simple Query that only reads
// (session.ClassifyQuery) takes its server from the pool's read sibling,
// whose servers go to replicas (pool/reads.go); everything else, the
// extended protocol included, takes one from the pool itself (the
// primary). The choice is made per transaction, at its first Query.
//
// A replica refuses writes itself (25006). An autocommit read
// (session.ReadAutocommit) is a trial: its replies are held until its
// ReadyForQuery, and if the replica refused it, they are dropped and the
// same Query is run on the primary, so the client sees only the
// primary's answer (a SELECT of a function that writes works). Past
// readTrialMax of held replies the trial ends and the rest streams: a
// refusal after that reaches the client. While a trial or its re-run is
// under way the client's next messages wait (as for a state check), so
// nothing overtakes the Query on either server.

import (
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
	"github.com/muxpg/mux/session"
)

// codeReadOnlyTransaction is the SQLSTATE a hot standby refuses a write
// with (read_only_sql_transaction).
const codeReadOnlyTransaction = "25006"

// readTrialMax bounds the replies held back during a trial.
const readTrialMax = 256 << 10

// rwState is where a client is in the read/write split.
type rwState uint8

const (
	rwIdle  rwState = iota // no trial: replies flow as usual
	rwTrial                // an autocommit read runs on a replica; its replies are held
	rwRerun                // the replica refused it: it is being sent to the primary
)

// readSplit is a client's read/write split state, made at its first
// read routed to a replica (a pointer in clientConn, which must stay in
// its size class), guarded by c.mu but from, which the session's driver
// owns.
type readSplit struct {
	state   rwState
	class   session.ReadClass // of the Query the next server is taken for
	from    *pool.Pool        // the pool the next server comes from (nil: c.pool)
	armed   *pool.Server      // a replica's server taken for query: its trial starts when the query is sent
	query   []byte            // the trial's Query message, for a re-run
	held    *[]byte           // the trial's replies so far (pooled; nil: none)
	refused bool              // the replica answered 25006
	done    chan struct{}     // closed when the trial or re-run ends
}

// busy reports a trial or re-run under way: the client waits.
func (rw *readSplit) busy() bool { return rw != nil && rw.state != rwIdle }

// in reports whether rw is in state st.
func (rw *readSplit) in(st rwState) bool { return rw != nil && rw.state == st }

// hold keeps b, a trial's replies.
func (rw *readSplit) hold(b []byte) {
	if rw.held == nil {
		rw.held = wire.GetBuf(len(b))
		*rw.held = (*rw.held)[:0]
	}
	*rw.held = append(*rw.held, b...)
}

// end ends a trial or re-run, dropping what it held.
func (rw *readSplit) end() {
	rw.state, rw.refused = rwIdle, false
	if rw.held != nil {
		wire.PutBuf(rw.held)
		rw.held = nil
	}
	if rw.done != nil {
		close(rw.done)
		rw.done = nil
	}
}

// acqPool is the pool the client's next server comes from.
func (c *clientConn) acqPool() *pool.Pool {
	if c.rw != nil && c.rw.from != nil {
		return c.rw.from
	}
	return c.pool
}

// routeLocked chooses the pool for the server that data (the run about
// to be forwarded) needs: the read sibling for one simple Query that only
// reads, the pool itself otherwise. c.mu held; the client holds no
// server.
func (c *clientConn) routeLocked(data []byte) {
	if c.rw != nil {
		c.rw.from, c.rw.class, c.rw.armed = nil, session.ReadWrite, nil
	}
	if c.core.Mode != session.Transaction {
		return
	}
	reads := c.pool.Reads()
	if reads == nil || !oneQuery(data) {
		return
	}
	class := session.ClassifyQuery(data, c.lexOptionsLocked())
	if class == session.ReadWrite {
		return
	}
	if c.rw == nil {
		c.rw = &readSplit{}
	}
	c.rw.from, c.rw.class = reads, class
	if class == session.ReadAutocommit {
		c.rw.query = append(c.rw.query[:0], data...)
	}
}

// oneQuery reports whether data is exactly one whole Query message.
func oneQuery(data []byte) bool {
	if len(data) < wire.HeaderLen || data[0] != 'Q' {
		return false
	}
	_, n := wire.Header(data)
	return 1+n == len(data)
}

// adoptedLocked arms a trial when s, just made the client's server, is a
// replica's taken for an autocommit read. c.mu held.
func (c *clientConn) adoptedLocked(s *pool.Server) {
	rw := c.rw
	if rw == nil || rw.state != rwIdle || rw.class != session.ReadAutocommit || !s.Pool().ForReads() || !s.OnStandby() {
		return
	}
	rw.armed = s
}

// beginTrialLocked starts the trial armed for s as its Query is sent:
// from now on the replies are held and the client's next messages wait.
// (Started at adoption, it would make the Query itself wait.) c.mu held.
func (c *clientConn) beginTrialLocked(s *pool.Server) {
	rw := c.rw
	if rw == nil || rw.armed != s || s == nil {
		return
	}
	rw.armed = nil
	rw.state, rw.refused = rwTrial, false
	rw.done = make(chan struct{})
}

// trialReply holds a trial's replies (out, in the pooled buffer bp if
// not nil, which it takes) until they are complete, and returns what
// goes to the client now, in a pooled buffer the caller puts back; rerun
// reports that the replica refused the Query and the primary must run
// it. c.mu held.
func (c *clientConn) trialReply(out []byte, bp *[]byte, ev *pool.Events, d session.Decision) (send []byte, sendBp *[]byte, rerun bool) {
	rw := c.rw
	if ev.ErrCode == codeReadOnlyTransaction {
		rw.refused = true
	}
	rw.hold(out)
	if bp != nil {
		wire.PutBuf(bp)
	}
	switch {
	case ev.Ready > 0 && rw.refused && d == session.Release && c.core.Status() == 'I':
		wire.PutBuf(rw.held)
		rw.held = nil
		rw.state = rwRerun
		return nil, nil, true
	case ev.Ready > 0 || d.Detaches() || len(*rw.held) > readTrialMax:
		sendBp = rw.held
		rw.held = nil // handed to the writer
		rw.end()
		return *sendBp, sendBp, false
	}
	return nil, nil, false
}

// rerun runs the trial's Query on the primary, the replica having
// refused it, on a goroutine of its own; the client's next messages wait
// until it is written.
func (c *clientConn) rerun() {
	if c.idleTimeoutsOn() {
		c.mu.Lock()
		c.setIdleDeadline(time.Time{}) // the release of the replica's server armed it
		c.mu.Unlock()
	}
	s, err := c.attachFrom(c.pool, false, time.Now())
	if err != nil {
		c.mu.Lock()
		c.rw.end()
		c.mu.Unlock()
		c.rerunFailed(err)
		return
	}
	c.mu.Lock()
	out := c.rw.query
	if c.track {
		out, _ = c.trk.ClientMessage(nil, session.ServerOf(s), c.rw.query, c)
	}
	var run session.Run
	run.Add('Q')
	c.count(run)
	c.mu.Unlock()
	c.stats.bytesIn.Add(int64(len(out)))
	werr := s.Write(out)
	c.mu.Lock()
	c.rw.end()
	c.mu.Unlock()
	if werr != nil {
		s.MarkBroken()
		c.rerunFailed(wire.Fatal(wire.CodeConnectionFailure, "server connection lost: %v", werr))
	}
}

// rerunFailed ends a session whose re-run found no primary.
func (c *clientConn) rerunFailed(err error) {
	var we *wire.Error
	if !errors.As(err, &we) {
		we = wire.Fatal(wire.CodeConnectionFailure, "no primary for a read the replica refused: %v", err)
	}
	c.logger().Info("re-running a refused read on the primary failed", zap.Error(err))
	c.sendError(we)
	c.terminate()
}

// waitBusy waits while a state check, a trial or a re-run holds the
// client's server. c.mu held; it may be released and retaken.
func (c *clientConn) waitBusy() {
	for {
		c.waitCheck()
		if !c.rw.busy() {
			return
		}
		ch := c.rw.done
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
	}
}

// waitRerun waits for a re-run under way, which will give the client a
// server (finish). c.mu held; it may be released and retaken.
func (c *clientConn) waitRerun() {
	for c.rw.in(rwRerun) {
		ch := c.rw.done
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
	}
}
