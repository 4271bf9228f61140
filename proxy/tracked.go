package proxy

// The read side of transaction-mode tracking: the same framing as
// process, with each whole message handed to the session core's Tracker
// (c.trk), which rewrites it for the server the client holds and queues
// the replies it is owed.

import (
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
	"github.com/muxpg/mux/session"
)

// processTracked is process for transaction and statement mode: every
// message that names a statement is rewritten for the server the client
// holds, and the replies it is owed are queued.
func (c *clientConn) processTracked() error {
	buf := *c.in.bp
	pos := c.in.r
	if !c.in.fr.Mid() {
		if c.in.w-pos >= wire.HeaderLen && buf[pos] == 'X' {
			c.in.r = c.in.w
			return errTerminate
		}
		probe := c.in.fr
		f, err := probe.Next(buf[pos:c.in.w], &wholeTracked, c.lim)
		switch {
		case err != nil: // refused below, once the server is there
		case f.Kind == session.Short:
			return nil
		case f.Kind == session.Partial:
			// The first message is not all here yet: no server needed.
			c.growFor(f.Len, &pos)
			return nil
		}
	}
	if c.answerWithoutServer() {
		return nil
	}
	s, err := c.holdServer(buf[pos:c.in.w])
	if err != nil {
		return err
	}
	outp := wire.GetBuf(c.in.w - pos + 512)
	out, pos, b, ferr := c.trackRun(s, (*outp)[:0], pos)
	c.count(b)
	// Replies mux made up that nothing from the server precedes go out now.
	var synth []byte
	if c.trk.HasAnswers() {
		synth = c.trk.AppendAnswers(nil, c.core.Status())
		if c.core.Pending() == 0 && c.core.Status() == 'I' && len(c.ln.notes) > 0 {
			synth = c.takeNotes(synth)
		}
	}
	// mux answered everything itself (a DEALLOCATE, say): a server taken
	// for this run and owed nothing goes straight back.
	release := len(out) == 0 && c.core.Clean() && c.core.Status() == 'I' &&
		!c.trk.Owes() && c.core.Mode != session.Session && !c.needsStateCheck()
	if release {
		c.server = nil
	} else if len(out) > 0 {
		c.beginTrialLocked(s) // rwsplit.go
	}
	apply := c.ln.apply
	c.ln.apply = nil
	if apply != nil && c.onLoop() {
		// LISTEN waits for the notifier's server: the rest runs off the
		// loop.
		c.mu.Unlock()
		c.offloadTracked(s, apply, synth, out, outp, release, pos, ferr)
		return errInFlight
	}
	return c.trackedTail(s, apply, synth, out, outp, release, pos, ferr, true)
}

// wholeTracked: a tracked client's messages are rewritten whole, except
// COPY data and function calls, which may be larger than any buffer and
// stream through.
var wholeTracked = session.TypesExcept('d', 'F')

// trackRun frames the input from pos and appends to out what the server
// holding s must get for it. It returns the run's effect on the release
// state and the error that stopped it, if any.
func (c *clientConn) trackRun(s *pool.Server, out []byte, pos int) ([]byte, int, session.Run, error) {
	buf := *c.in.bp
	srv := session.ServerOf(s)
	var b session.Run
	for {
		f, err := c.in.fr.Next(buf[pos:c.in.w], &wholeTracked, c.lim)
		if err != nil {
			return out, pos, b, err
		}
		switch {
		case f.Kind == session.Short:
			return out, pos, b, nil
		case f.Kind == session.Partial:
			c.in.r = pos
			c.growFor(f.Len, &pos)
			return out, pos, b, nil
		case f.Kind != session.Rest && f.Type == 'X':
			return out, c.in.w, b, errTerminate
		case f.Kind == session.Whole:
			msg := buf[pos : pos+f.Len]
			var counted bool
			if out, counted = c.trk.ClientMessage(out, srv, msg, c); counted {
				b.Add(f.Type)
			}
		case f.Kind == session.Begin && f.Type == 'F':
			c.trk.OweReply('F')
			b.Add('F')
			fallthrough
		default:
			// Large COPY data and function calls stream through.
			out = append(out, buf[pos:pos+f.Len]...)
		}
		pos += f.Len
	}
}

// offloadTracked runs trackedTail on a goroutine (a function of its own
// so that processTracked's variables are not captured, and allocated, on
// every call).
func (c *clientConn) offloadTracked(s *pool.Server, apply []listenOp, synth, out []byte, outp *[]byte, release bool, pos int, ferr error) {
	c.offloadTail(func() error {
		return c.trackedTail(s, apply, synth, out, outp, release, pos, ferr, false)
	})
}

// trackedTail ends processTracked, with c.mu held if locked: the answers
// mux made, the run to the server, the release of a server taken for
// nothing.
func (c *clientConn) trackedTail(s *pool.Server, apply []listenOp, synth, out []byte, outp *[]byte, release bool, pos int, ferr error, locked bool) error {
	switch {
	case apply != nil:
		// LISTEN/UNLISTEN between transactions: nothing from a server is
		// owed to the client, so the answer may wait, outside every lock,
		// for Postgres to confirm.
		if locked {
			c.mu.Unlock()
		}
		c.p.notifierFor(poolKey{c.database, c.user}, c.pool.Config()).applyAndWait(c, apply)
		if synth != nil {
			if werr := c.writeTimed(synth); werr != nil && ferr == nil {
				ferr = werr
			}
		}
	case synth != nil:
		werr := c.sendOrdered(synth, nil, c.onLoop())
		if werr != nil && ferr == nil {
			ferr = werr
		}
	default:
		c.mu.Unlock()
	}
	if len(out) > 0 {
		c.stats.bytesIn.Add(int64(len(out)))
		if err := c.serverWrite(s, out); err != nil && ferr == nil {
			ferr = wire.Fatal(wire.CodeConnectionFailure, "server connection lost: %v", err)
		}
	}
	*outp = out
	wire.PutBuf(outp)
	if release {
		c.pool.Release(s)
		c.armIdleTimeout()
	}
	c.consumed(pos)
	return ferr
}
