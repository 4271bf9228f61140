package session

import "time"

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
