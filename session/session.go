// Package session is the protocol core of one client session, without I/O:
// it frames what the client sends, keeps the release rule's state (what
// the server still owes the client), decides at each reply what becomes of
// the server, times queries and transactions, and tracks prepared
// statements in transaction and statement mode (Tracker). Callers feed it
// bytes and events and carry out the decisions it returns (write, acquire,
// release, close); it reads no clock, never blocks, and takes no locks but
// the pool-wide statement Registry's, so the fuzz targets and unit tests
// drive it directly.
package session

import (
	"time"

	"github.com/muxpg/mux/internal/wire"
)

// Mode is a pool mode: when a server may go back to the pool.
type Mode uint8

const (
	// Session mode keeps the server until the client leaves.
	Session Mode = iota
	// Transaction mode lets go of it after each transaction.
	Transaction
	// Statement mode lets go of it after each statement, and refuses
	// transaction blocks.
	Statement
)

// ModeOf maps a config pool_mode value to its Mode; anything but
// "transaction" and "statement" is Session.
func ModeOf(s string) Mode {
	switch s {
	case "transaction":
		return Transaction
	case "statement":
		return Statement
	}
	return Session
}

// Limits are what a client's messages may be: 8 bytes, kept per client.
type Limits struct {
	// MaxMessage is the longest message accepted (max_message_size).
	MaxMessage int32
	// NoSimpleQuery refuses the simple query protocol (disable_pqexec).
	NoSimpleQuery bool
}

// CheckFrame refuses a message header mux cannot frame: a length outside
// [4, lim.MaxMessage], a type no frontend sends (Terminate passes), or a
// Query when lim refuses the simple query protocol.
func CheckFrame(typ byte, l int, lim Limits) error {
	if l < 4 || l > int(lim.MaxMessage) {
		return wire.Fatal(wire.CodeProtocolViolation, "invalid message length %d for message type %q (max_message_size is %d bytes)", l, typ, lim.MaxMessage)
	}
	switch typ {
	case 'Q':
		if lim.NoSimpleQuery {
			return wire.Fatal(wire.CodeProtocolViolation, "the simple query protocol is disabled (disable_pqexec); use the extended query protocol")
		}
		return nil
	case 'S', 'F', 'P', 'B', 'E', 'D', 'C', 'H', 'd', 'c', 'f', 'X':
		return nil
	}
	return wire.Fatal(wire.CodeProtocolViolation, "invalid frontend message type %d", typ)
}

var modeNames = [...]string{"session", "transaction", "statement"}

// String is the mode's pool_mode name.
func (m Mode) String() string { return modeNames[m] }

// TypeSet is a set of message types.
type TypeSet [4]uint64

// Types returns the set of the given message types.
func Types(types ...byte) TypeSet {
	var s TypeSet
	for _, t := range types {
		s[t>>6] |= 1 << (t & 63)
	}
	return s
}

// Has reports whether t is in the set.
func (s *TypeSet) Has(t byte) bool { return s[t>>6]&(1<<(t&63)) != 0 }

// FrameKind says what a Frame is.
type FrameKind uint8

const (
	// Short: less than a message header is there; read more.
	Short FrameKind = iota
	// Rest: bytes of a message begun in an earlier Frame.
	Rest
	// Whole: a whole message.
	Whole
	// Begin: the start of a message longer than what is there; the rest
	// comes as Rest frames.
	Begin
	// Partial: the start of a message the caller asked to see whole
	// (Next's whole set); nothing is consumed, and Len is the message's
	// total size so the caller can make room for it.
	Partial
)

// Frame is the first thing a Framer found in the input.
type Frame struct {
	Kind FrameKind
	Type byte // the message type (Whole, Begin, Partial)
	Len  int  // bytes of input the frame covers; for Partial, the message's size
}

// Framer splits a client's byte stream into messages by their 5-byte
// headers. Its only state is how much of a message that is passed through
// in pieces is still to come; copying a Framer saves it.
type Framer struct {
	rest int
}

// Mid reports whether the framer is inside a message passed through in
// pieces.
func (f *Framer) Mid() bool { return f.rest > 0 }

// Next frames the start of buf, the client's unconsumed input. Messages
// whose type is in whole are never split: with only part of one there,
// Next returns Partial. A header mux cannot frame (see CheckFrame) is an
// error. The caller consumes Len bytes of a Rest, Whole or Begin frame.
func (f *Framer) Next(buf []byte, whole *TypeSet, lim Limits) (Frame, error) {
	if f.rest > 0 && len(buf) > 0 {
		n := min(f.rest, len(buf))
		f.rest -= n
		return Frame{Kind: Rest, Len: n}, nil
	}
	if f.rest > 0 || len(buf) < wire.HeaderLen {
		return Frame{Kind: Short}, nil
	}
	typ, l := wire.Header(buf)
	if err := CheckFrame(typ, l, lim); err != nil {
		return Frame{}, err
	}
	total := 1 + l
	switch {
	case len(buf) >= total:
		return Frame{Kind: Whole, Type: typ, Len: total}, nil
	case whole.Has(typ):
		return Frame{Kind: Partial, Type: typ, Len: total}, nil
	}
	f.rest = total - len(buf)
	return Frame{Kind: Begin, Type: typ, Len: len(buf)}, nil
}

// TypesExcept returns the set of every message type but the given ones.
func TypesExcept(types ...byte) TypeSet {
	s := TypeSet{^uint64(0), ^uint64(0), ^uint64(0), ^uint64(0)}
	for _, t := range types {
		s[t>>6] &^= 1 << (t & 63)
	}
	return s
}

// Run is what a run of client messages forwarded in one write does to the
// release state.
type Run struct {
	Syncs int  // messages that will each be answered by ReadyForQuery
	state int8 // 0: unchanged, 1: ends mid extended-protocol batch, -1: ends at a Sync or Query
}

// Add records one message of type typ.
func (r *Run) Add(typ byte) {
	switch typ {
	case 'Q', 'S', 'F':
		r.Syncs++
		r.state = -1
	case 'P', 'B', 'E', 'D', 'C':
		r.state = 1
	}
}

// Core is a session's release state and timing: what the server it holds
// still owes the client, and since when. The release rule: in transaction
// and statement mode the server goes back to the pool when it has answered
// everything sent (no Sync, Query or FunctionCall unanswered, no extended
// protocol message after the last Sync) and its ReadyForQuery says idle.
type Core struct {
	Mode Mode

	pending int  // Sync/Query/FunctionCall forwarded, not yet answered by ReadyForQuery
	dirty   bool // extended-protocol messages forwarded since the last Sync
	status  byte // the last ReadyForQuery's transaction status

	lastRequest time.Time // when the client last sent a run of messages
	queryStart  time.Time // start of the query being answered
	xactStart   time.Time // start of the current transaction
}

// Attached resets the state for a server just taken from the pool: it
// owes nothing and is idle.
func (c *Core) Attached() { c.pending, c.dirty, c.status = 0, false, 'I' }

// Pending is the number of queries sent and not yet answered.
func (c *Core) Pending() int { return c.pending }

// Dirty reports extended-protocol messages sent since the last Sync.
func (c *Core) Dirty() bool { return c.dirty }

// Status is the transaction status of the last ReadyForQuery: 'I' idle,
// 'T' in a transaction, 'E' in a failed one.
func (c *Core) Status() byte { return c.status }

// Clean reports that the server owes the client nothing.
func (c *Core) Clean() bool { return c.pending == 0 && !c.dirty }

// LastRequest is when the client last sent something to a server.
func (c *Core) LastRequest() time.Time { return c.lastRequest }

// QueryStart is when the query being answered started.
func (c *Core) QueryStart() time.Time { return c.queryStart }

// XactStart is when the current (or last) transaction started.
func (c *Core) XactStart() time.Time { return c.xactStart }

// Sent records run, forwarded at now. starts reports a run that begins a
// query on a server that owed nothing (its query timer starts if it asks
// for an answer); awaits reports a run that makes a session owing nothing
// wait for an answer (it is no longer idle in a transaction).
func (c *Core) Sent(run Run, now time.Time) (starts, awaits bool) {
	c.lastRequest = now
	if c.pending == 0 && !c.dirty {
		starts = true
		c.queryStart = now
		if c.status == 'I' {
			c.xactStart = now
		}
	}
	awaits = c.pending == 0 && run.Syncs > 0
	c.pending += run.Syncs
	switch run.state {
	case 1:
		c.dirty = true
	case -1:
		c.dirty = false
	}
	return starts, awaits
}

// Timed is what a batch of ReadyForQuery messages ended.
type Timed struct {
	Query time.Duration // the last answered query's duration
	Xact  time.Duration // the transaction's, if one ended (XactEnded)

	XactEnded bool
}

// Answered records n ReadyForQuery messages, the last with status, read
// at now, and times what they ended. The next pipelined query, if any,
// starts now.
func (c *Core) Answered(n int, status byte, now time.Time) Timed {
	c.pending = max(c.pending-n, 0)
	c.status = status
	t := Timed{Query: now.Sub(c.queryStart)}
	c.queryStart = now
	if status == 'I' && c.pending == 0 {
		t.Xact, t.XactEnded = now.Sub(c.xactStart), true
	}
	return t
}

// Decision is what becomes of a session's server after a batch of its
// replies.
type Decision uint8

const (
	// Keep: replies are still owed, or the batch held only asynchronous
	// messages; nothing changes.
	Keep Decision = iota
	// Idle: everything sent is answered, and the server stays with the
	// client (a transaction is open, or session mode): the client has the
	// next move, and its idle timeouts run.
	Idle
	// Release: everything is answered between transactions: the server
	// goes back to the pool.
	Release
	// Check: as Release, but the session's state may have changed on the
	// server: read it first, then release the server or pin the client.
	Check
	// RefuseTransaction: a statement-mode client opened a transaction
	// block: refuse it (FATAL), roll it back and release the server.
	RefuseTransaction
	// Close: the server sent a FATAL error: the session ends.
	Close
)

var decisionNames = [...]string{"keep", "idle", "release", "check", "refuse-transaction", "close"}

func (d Decision) String() string { return decisionNames[d] }

// Detaches reports whether the client lets go of its server at once.
func (d Decision) Detaches() bool { return d == Release || d == RefuseTransaction || d == Close }

// Reply is what the server's reader saw in one batch of replies.
type Reply struct {
	Ready int  // ReadyForQuery messages (Answered has recorded them)
	Fatal bool // an ErrorResponse with severity FATAL or PANIC
}

// Decide applies the release rule to a batch of replies. unsure reports
// that the session state may have changed since it was last read (a SET,
// say): a server released then is checked first.
func (c *Core) Decide(r Reply, unsure bool) Decision {
	switch {
	case r.Fatal:
		return Close
	case r.Ready == 0:
		return Keep
	case c.pending > 0:
		return Keep
	case c.dirty || c.Mode == Session:
		return Idle
	case c.status == 'I' && unsure:
		return Check
	case c.status == 'I':
		return Release
	case c.Mode == Statement:
		return RefuseTransaction
	}
	return Idle
}
