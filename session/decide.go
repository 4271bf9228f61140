package session

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
