package proxy

import (
	"bytes"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/session"
	"github.com/muxpg/mux/sqllex"
)

// Prepared statements in transaction and statement mode: the protocol
// work is the session core's Tracker (session/tracker.go); the client is
// its Host, answering from the rules that live here: what SQL text does
// to session state (sessionstate.go), LISTEN (notes.go), pin_policy.

// PreparedStats counts prepared statement work, for SHOW and metrics.
type PreparedStats = session.PreparedStats

// newStmtRegistry returns a pool's statement registry.
func newStmtRegistry() *session.Registry { return session.NewRegistry(scanStmt) }

// scanStmt is what a prepared statement's text may do to session state.
func scanStmt(query []byte) session.StateHit {
	return session.ScanState(query, session.FindWords(query), sqllex.Options{StandardConformingStrings: true})
}

// Status is the transaction status, for the Tracker. c.mu held.
func (c *clientConn) Status() byte { return c.core.Status() }

// CheckText looks at the text of a Parse or Query for the Tracker. c.mu
// held.
func (c *clientConn) CheckText(msg []byte) session.TextCheck {
	opt := c.lexOptionsLocked()
	if msg[0] == 'Q' {
		return c.checkQuery(msg, opt)
	}
	return c.checkParse(msg, opt)
}

// checkParse: a LISTEN is refused by the server itself; a statement that
// pins is refused under pin_policy = error; the hit is noted at each Bind.
func (c *clientConn) checkParse(msg []byte, opt sqllex.Options) session.TextCheck {
	chk := session.TextCheck{Msg: msg}
	query := parseQuery(msg)
	words := session.FindWords(query)
	if words&session.WordListen != 0 {
		if repl := session.RefuseListen(msg, opt); repl != nil {
			chk.Msg = repl
			query = parseQuery(repl)
			words = session.FindWords(query)
		}
	}
	chk.Hit = session.ScanState(query, words, opt)
	if chk.Hit.Pin != "" && c.pin.policy == "error" {
		chk.Refuse = pinRefusal(chk.Hit.Pin)
	}
	return chk
}

// parseQuery is the query text of a Parse message.
func parseQuery(msg []byte) []byte {
	_, rest, _ := wire.CString(msg[wire.HeaderLen:])
	query, _, _ := wire.CString(rest)
	return query
}

// checkQuery: LISTEN/UNLISTEN are answered by mux (listen_fanout) or
// refused by the server itself; the hit is noted now.
func (c *clientConn) checkQuery(msg []byte, opt sqllex.Options) session.TextCheck {
	chk := session.TextCheck{Msg: msg, Opt: opt}
	sql := bytes.TrimSuffix(msg[wire.HeaderLen:], []byte{0})
	words := session.FindWords(sql)
	if words&session.WordListen != 0 {
		if c.p.config().ListenFanout {
			if reply, ok := c.listenQuery(sql, opt); ok {
				chk.Answer = reply
				return chk
			}
		}
		if repl := session.RefuseListen(msg, opt); repl != nil {
			chk.Msg = repl
			sql = bytes.TrimSuffix(repl[wire.HeaderLen:], []byte{0})
			words = session.FindWords(sql)
		}
	}
	chk.Hit = session.ScanState(sql, words, opt)
	if refuse := c.noteState(chk.Hit); refuse != "" {
		chk.Refuse = pinRefusal(refuse)
		return chk
	}
	chk.Lex = words&(session.WordDeallocate|session.WordDiscard) != 0
	return chk
}

// Bound notes the Bind of a statement for the Tracker. c.mu held.
func (c *clientConn) Bound(hit session.StateHit, params []byte) {
	c.noteState(hit)
	if hit.SetConfig {
		c.watchBindParams(params)
	}
}

// FunctionCall notes a FunctionCall for the Tracker: a function may
// change anything. c.mu held.
func (c *clientConn) FunctionCall() { c.pin.stateDirty = true }

// Replied sees the server's CommandCompletes and ReadyForQuery for the
// Tracker: LISTENs made in a transaction apply when it commits. c.mu held.
func (c *clientConn) Replied(typ byte, body []byte) {
	switch typ {
	case 'C':
		c.ln.sawCommit = bytes.HasPrefix(body, []byte("COMMIT"))
	case 'Z':
		if len(body) > 0 && body[0] == 'I' && len(c.ln.pending) > 0 {
			c.endTransaction(c.ln.sawCommit)
		}
	}
}

// forgetStatements gives back a leaving client's statement names.
func (c *clientConn) forgetStatements() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.trk.Forget()
}
