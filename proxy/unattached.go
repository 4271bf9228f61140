package proxy

// Answers mux gives a client that holds no server.

// answerWithoutServer answers, with no server, a run of messages from a
// client that holds none when every one of them can be: Parse of a named
// statement that a server of the pool has already parsed, Close of a
// statement name, Flush and Sync. libpq's PQprepare (pgbench -M prepared)
// is such a run; answering it here means a client preparing outside a
// transaction never waits for a server, so it cannot be starved by clients
// of its own (single-threaded) program that hold servers mid-transaction.
// Errors in such a statement surface at its first Bind, on a server.
func (c *clientConn) answerWithoutServer() bool {
	c.mu.Lock()
	out, ok := c.answerWithoutServerLocked()
	if !ok {
		c.mu.Unlock()
		return false
	}
	// The write lock before letting go of mu, as in ServerData: the
	// answer is written outside mu.
	if err := c.sendOrdered(out, nil, c.onLoop()); err != nil {
		c.mu.Lock()
		c.gone = true
		c.mu.Unlock()
	}
	c.consumed(c.in.w)
	return true
}

// answerWithoutServerLocked is answerWithoutServer's work under c.mu: the
// answer (the Tracker's), or false if the run needs a server.
func (c *clientConn) answerWithoutServerLocked() ([]byte, bool) {
	if c.server != nil || c.in.fr.Mid() {
		return nil, false
	}
	return c.trk.Unattached((*c.in.bp)[c.in.r:c.in.w])
}
