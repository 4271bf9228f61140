package proxy

// Answers mux gives a client that holds no server.

import "github.com/muxpg/mux/internal/wire"

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
// answer, or false if the run needs a server.
func (c *clientConn) answerWithoutServerLocked() ([]byte, bool) {
	if c.server != nil || c.in.fr.Mid() {
		return nil, false
	}
	buf := (*c.in.bp)[c.in.r:c.in.w]
	pos := 0
	for pos < len(buf) {
		if len(buf)-pos < wire.HeaderLen {
			return nil, false
		}
		typ, l := wire.Header(buf[pos:])
		if l < 4 || pos+1+l > len(buf) {
			return nil, false // only whole runs
		}
		body := buf[pos+wire.HeaderLen : pos+1+l]
		switch typ {
		case 'S', 'H':
		case 'C':
			if name, ok := statementTarget(body); !ok || len(name) == 0 {
				return nil, false
			}
		case 'P':
			name, rest, ok1 := cstring(body)
			query, types, ok2 := cstring(rest)
			if !ok1 || !ok2 || len(name) == 0 {
				return nil, false
			}
			if _, dup := c.trk.stmts[string(name)]; dup || !c.reg.isVerified(query, types) {
				return nil, false
			}
		default:
			return nil, false
		}
		pos += 1 + l
	}
	if pos == 0 {
		return nil, false
	}
	var out []byte
	pos = 0
	for pos < len(buf) {
		typ, l := wire.Header(buf[pos:])
		body := buf[pos+wire.HeaderLen : pos+1+l]
		switch typ {
		case 'S':
			out = wire.AppendReadyForQuery(out, 'I')
		case 'C':
			name, _, _ := cstring(body[1:])
			if st := c.trk.stmts[string(name)]; st != nil {
				delete(c.trk.stmts, string(name))
				c.reg.release(st)
			}
			out = append(out, closeComplete...)
		case 'P':
			name, rest, _ := cstring(body)
			query, types, _ := cstring(rest)
			st := c.reg.lookupVerified(query, types)
			if st == nil {
				// Forgotten since the check: the client will see the
				// statement missing at Bind (26000).
				out = append(out, parseComplete...)
				break
			}
			c.reg.clientParses.Add(1)
			c.reg.hits.Add(1)
			c.trk.stmts[string(name)] = st
			out = append(out, parseComplete...)
		}
		pos += 1 + l
	}
	return out, true
}
