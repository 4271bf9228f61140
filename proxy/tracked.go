package proxy

// The client side of transaction-mode tracking: every message that names
// a statement is rewritten for the server the client holds now, and the
// replies it is owed are queued (see prepared.go for the registry and the
// reply queue).

import (
	"bytes"
	"strings"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
	"github.com/muxpg/mux/session"
	"github.com/muxpg/mux/sqllex"
)

func appendHeader(dst []byte, typ byte, bodyLen int) []byte {
	n := 4 + bodyLen
	return append(dst, typ, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

func appendParse(dst []byte, name string, query, types []byte) []byte {
	dst = appendHeader(dst, 'P', len(name)+1+len(query)+1+len(types))
	dst = append(dst, name...)
	dst = append(dst, 0)
	dst = append(dst, query...)
	dst = append(dst, 0)
	return append(dst, types...)
}

// appendNamed appends a Describe or Close message.
func appendNamed(dst []byte, typ, kind byte, name string) []byte {
	dst = appendHeader(dst, typ, 1+len(name)+1)
	dst = append(dst, kind)
	dst = append(dst, name...)
	return append(dst, 0)
}

// cstring splits b at its first NUL.
func cstring(b []byte) (s, rest []byte, ok bool) {
	i := bytes.IndexByte(b, 0)
	if i < 0 {
		return nil, nil, false
	}
	return b[:i], b[i+1:], true
}

// raiseSQL is a statement that makes the server itself raise an error, so
// that inside a transaction block the transaction is aborted exactly as
// Postgres would abort it.
func raiseSQL(code, msg string) string {
	return `DO $mux$BEGIN RAISE EXCEPTION USING ERRCODE = '` + code + `', MESSAGE = '` +
		strings.ReplaceAll(msg, "'", "''") + `'; END$mux$`
}

// appendRaise appends Parse/Bind/Execute of raiseSQL; the client sees only
// the error, in place of the reply to message msg.
func (c *clientConn) appendRaise(dst []byte, s *pool.Server, msg byte, code, text string) []byte {
	q := raiseSQL(code, text)
	dst = appendParse(dst, "", []byte(q), []byte{0, 0})
	dst = append(dst, 'B', 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0) // unnamed portal/statement, no params or formats
	dst = append(dst, 'E', 0, 0, 0, 9, 0, 0, 0, 0, 0)
	s.UnnamedKey = muxUnnamedKey
	c.push(expectation{msg: 'P', swallow: true})
	c.push(expectation{msg: 'B', swallow: true})
	c.push(expectation{msg: msg})
	return dst
}

// ensurePrepared makes sure server s has st, appending the Parse (and
// Closes of evicted statements) to dst with swallowed replies.
func (c *clientConn) ensurePrepared(dst []byte, s *pool.Server, st *preparedStmt) []byte {
	if s.Stmts.Has(st.name) {
		c.reg.hits.Add(1)
		return dst
	}
	return c.prepareOn(dst, s, st, "", true)
}

// prepareOn appends a Parse of st for server s; swallow hides its
// ParseComplete (mux's own Parse), name is the client's name for st when
// the client asked for this Parse.
func (c *clientConn) prepareOn(dst []byte, s *pool.Server, st *preparedStmt, name string, swallow bool) []byte {
	c.trk.evicted = s.Stmts.Add(st.name, c.trk.evicted[:0])
	for _, old := range c.trk.evicted {
		dst = appendNamed(dst, 'C', 'S', old)
		c.push(expectation{msg: 'C', swallow: true})
		c.reg.evictions.Add(1)
	}
	c.reg.serverParses.Add(1)
	dst = append(dst, st.parse...)
	c.push(expectation{msg: 'P', swallow: swallow, stmt: st, name: name})
	return dst
}

// ensureUnnamed re-issues the client's last unnamed Parse if server s does
// not hold it, before a Bind or Describe of the unnamed statement. A client
// that never prepared one must not reach another client's: it gets
// Postgres's error.
func (c *clientConn) ensureUnnamed(dst []byte, s *pool.Server, msg byte) (out []byte, refused bool) {
	if c.trk.unnamedParse != nil {
		if s.UnnamedKey != c.trk.unnamedKey {
			dst = append(dst, c.trk.unnamedParse...)
			c.push(expectation{msg: 'P', swallow: true})
			s.UnnamedKey = c.trk.unnamedKey
		}
		return dst, false
	}
	if s.UnnamedKey != 0 {
		return c.appendRaise(dst, s, msg, "26000", "unnamed prepared statement does not exist"), true
	}
	return dst, false
}

// statementTarget is the statement name a Describe or Close body names,
// if it names a statement ('S') rather than a portal.
func statementTarget(body []byte) (name []byte, ok bool) {
	if len(body) < 2 || body[0] != 'S' {
		return nil, false
	}
	name, _, ok = cstring(body[1:])
	return name, ok
}

// trackClientMessage rewrites one whole client message for server s,
// appending what the server is to receive to dst and queueing the replies.
func (c *clientConn) trackClientMessage(dst []byte, s *pool.Server, msg []byte) []byte {
	typ := msg[0]
	body := msg[wire.HeaderLen:]
	switch typ {
	case 'P':
		name, rest, ok1 := cstring(body)
		query, types, ok2 := cstring(rest)
		if !ok1 || !ok2 {
			break // malformed: let Postgres say so
		}
		opt := c.lexOptionsLocked()
		words := findWords(query)
		if words&wordListen != 0 {
			if repl := refuseListen(msg, opt); repl != nil {
				msg, body = repl, repl[wire.HeaderLen:]
				name, rest, _ = cstring(body)
				query, types, _ = cstring(rest)
				words = findWords(query)
			}
		}
		if h := scanState(query, words, opt); h.pin != "" && c.pin.policy == "error" {
			return c.appendRaise(dst, s, 'P', "0A000", pinRefusal(h.pin))
		} else if len(name) == 0 {
			c.trk.unnamedHit = h
		}
		if len(name) == 0 {
			c.trk.unnamedKey = unnamedKeys.Add(1)
			c.trk.unnamedParse = append(c.trk.unnamedParse[:0], msg...)
			s.UnnamedKey = c.trk.unnamedKey
			break
		}
		c.reg.clientParses.Add(1)
		if c.core.Status() == 'E' {
			// An aborted transaction refuses the Parse (25P02); let the
			// server say so, registering nothing.
			return c.appendRaise(dst, s, 'P', "25P02", "current transaction is aborted, commands ignored until end of transaction block")
		}
		if _, dup := c.trk.stmts[string(name)]; dup {
			return c.appendRaise(dst, s, 'P', "42P05", "prepared statement \""+string(name)+"\" already exists")
		}
		st := c.reg.acquire(query, types)
		c.trk.stmts[string(name)] = st
		if s.Stmts.Has(st.name) {
			c.reg.hits.Add(1)
			c.push(expectation{msg: 'P', synth: parseComplete, stmt: st, name: string(name)})
			return dst
		}
		return c.prepareOn(dst, s, st, string(name), false)
	case 'B':
		portal, rest, ok1 := cstring(body)
		name, tail, ok2 := cstring(rest)
		if !ok1 || !ok2 {
			break
		}
		if len(name) == 0 {
			var refused bool
			if dst, refused = c.ensureUnnamed(dst, s, 'B'); refused {
				return dst
			}
			c.setPortal(portal, nil)
			c.noteState(c.trk.unnamedHit)
			if c.trk.unnamedHit.setConfig {
				c.watchBindParams(tail)
			}
			break
		}
		st := c.trk.stmts[string(name)]
		if st == nil {
			return c.appendRaise(dst, s, 'B', "26000", "prepared statement \""+string(name)+"\" does not exist")
		}
		c.noteState(st.hit)
		if st.hit.setConfig {
			c.watchBindParams(tail)
		}
		dst = c.ensurePrepared(dst, s, st)
		dst = appendHeader(dst, 'B', len(portal)+1+len(st.name)+1+len(tail))
		dst = append(dst, portal...)
		dst = append(dst, 0)
		dst = append(dst, st.name...)
		dst = append(dst, 0)
		dst = append(dst, tail...)
		c.setPortal(portal, st)
		c.push(expectation{msg: 'B', stmt: st})
		return dst
	case 'D':
		name, ok := statementTarget(body)
		if !ok {
			break
		}
		if len(name) == 0 {
			var refused bool
			if dst, refused = c.ensureUnnamed(dst, s, 'D'); refused {
				return dst
			}
			break
		}
		st := c.trk.stmts[string(name)]
		if st == nil {
			return c.appendRaise(dst, s, 'D', "26000", "prepared statement \""+string(name)+"\" does not exist")
		}
		dst = c.ensurePrepared(dst, s, st)
		dst = appendNamed(dst, 'D', 'S', st.name)
		c.push(expectation{msg: 'D', stmt: st})
		return dst
	case 'C':
		name, ok := statementTarget(body)
		if !ok {
			break
		}
		if len(name) == 0 {
			c.trk.unnamedParse = nil
			if s.UnnamedKey == c.trk.unnamedKey {
				s.UnnamedKey = 0
			}
			break
		}
		// The server copy may serve other clients: only the client's name
		// goes, and mux answers.
		if st := c.trk.stmts[string(name)]; st != nil {
			delete(c.trk.stmts, string(name))
			c.reg.release(st)
		}
		c.push(expectation{msg: 'C', synth: closeComplete})
		return dst
	case 'E':
		portal, _, _ := cstring(body)
		dst = append(dst, msg...)
		c.push(expectation{msg: 'E', stmt: c.trk.portals[string(portal)]})
		return dst
	case 'S', 'F':
		if typ == 'F' {
			c.pin.stateDirty = true // a function may change anything
		}
		dst = append(dst, msg...)
		c.push(expectation{msg: typ})
		return dst
	case 'Q':
		dst, _ = c.trackQuery(dst, s, msg)
		return dst
	case 'H', 'd', 'c', 'f':
		return append(dst, msg...)
	}
	// Unnamed Parse/Bind/Describe, portal Describe/Close, malformed
	// messages: sent as they are; the server answers.
	dst = append(dst, msg...)
	if typ == 'P' || typ == 'B' || typ == 'D' || typ == 'C' {
		c.push(expectation{msg: typ})
	}
	return dst
}

func (c *clientConn) setPortal(portal []byte, st *preparedStmt) {
	if st == nil {
		if len(c.trk.portals) > 0 {
			delete(c.trk.portals, string(portal))
		}
		return
	}
	if c.trk.portals == nil {
		c.trk.portals = map[string]*preparedStmt{}
	} else if len(c.trk.portals) > 64 {
		clear(c.trk.portals) // portals end with their transaction; keep this small
	}
	c.trk.portals[string(portal)] = st
}

// trackQuery handles a simple Query in tracked mode: LISTEN refusal,
// DEALLOCATE of a client's statement name (answered by mux, since the
// server knows the statement by another name), and DISCARD ALL /
// DEALLOCATE ALL (which empty the server's statements). counted is false
// when mux answered the Query itself.
func (c *clientConn) trackQuery(dst []byte, s *pool.Server, msg []byte) (out []byte, counted bool) {
	opt := c.lexOptionsLocked()
	sql := bytes.TrimSuffix(msg[wire.HeaderLen:], []byte{0})
	words := findWords(sql)
	if words&wordListen != 0 {
		if c.p.config().ListenFanout {
			if d, ok := c.listenQuery(dst, sql, opt); ok {
				return d, false
			}
		}
		if repl := refuseListen(msg, opt); repl != nil {
			msg = repl
			sql = bytes.TrimSuffix(msg[wire.HeaderLen:], []byte{0})
			words = findWords(sql)
		}
	}
	if refuse := c.noteState(scanState(sql, words, opt)); refuse != "" {
		s.UnnamedKey = 0
		dst = wire.AppendQuery(dst, raiseSQL("0A000", pinRefusal(refuse)))
		c.push(expectation{msg: 'Q'})
		return dst, true
	}
	var clearKind byte
	n := 0
	var dealloc []byte // the name in a lone "DEALLOCATE [PREPARE] name"
	if words&(wordDeallocate|wordDiscard) != 0 {
		sqllex.Scan(sql, opt, func(st sqllex.Statement) bool {
			n++
			kw := st.Keywords
			switch {
			case kw[0] == sqllex.KwDiscard && kw[1] == sqllex.KwAll:
				clearKind = 'D'
			case kw[0] == sqllex.KwDeallocate && (kw[1] == sqllex.KwAll || kw[1] == sqllex.KwPrepare && kw[2] == sqllex.KwAll):
				clearKind = 'A'
			case kw[0] == sqllex.KwDeallocate:
				from := st.Words[0].End
				if kw[1] == sqllex.KwPrepare {
					from = st.Words[1].End
				}
				dealloc = sql[from:st.End]
			}
			return true
		})
	}
	if n == 1 && dealloc != nil && c.core.Status() != 'E' {
		if name, ok := identName(dealloc); ok {
			st := c.trk.stmts[name]
			if st == nil {
				// Not one of the client's protocol-level statements: an
				// SQL-level PREPARE on this server, or nothing (then
				// Postgres answers 26000 itself).
				s.UnnamedKey = 0
				dst = append(dst, msg...)
				c.push(expectation{msg: 'Q'})
				return dst, true
			}
			delete(c.trk.stmts, name)
			c.reg.release(st)
			c.push(expectation{msg: 'Q', synth: deallocateComplete, synthZ: true})
			return dst, false
		}
	}
	if clearKind != 0 {
		for name, st := range c.trk.stmts {
			delete(c.trk.stmts, name)
			c.reg.release(st)
		}
		if clearKind == 'D' {
			c.trk.unnamedParse = nil
		}
	}
	s.UnnamedKey = 0
	dst = append(dst, msg...)
	c.push(expectation{msg: 'Q', clear: clearKind})
	return dst, true
}

// deallocateComplete is CommandComplete "DEALLOCATE".
var deallocateComplete = []byte{'C', 0, 0, 0, 15, 'D', 'E', 'A', 'L', 'L', 'O', 'C', 'A', 'T', 'E', 0}

// identName reads one SQL identifier (bare: folded to lower case; or
// "quoted") filling the whole of b apart from spaces.
func identName(b []byte) (string, bool) {
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return "", false
	}
	if b[0] == '"' {
		if len(b) < 2 || b[len(b)-1] != '"' {
			return "", false
		}
		inner := string(b[1 : len(b)-1])
		if strings.Contains(strings.ReplaceAll(inner, `""`, ""), `"`) {
			return "", false
		}
		return strings.ReplaceAll(inner, `""`, `"`), true
	}
	for _, ch := range b {
		if !(ch == '_' || ch == '$' || ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'z' || ch >= 'A' && ch <= 'Z' || ch >= 0x80) {
			return "", false
		}
	}
	return strings.ToLower(string(b)), true
}

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
		f, err := probe.Next(buf[pos:c.in.w], &wholeTracked, c.maxMsg)
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
	s, err := c.holdServer()
	if err != nil {
		return err
	}
	outp := wire.GetBuf(c.in.w - pos + 512)
	out, pos, b, ferr := c.trackRun(s, (*outp)[:0], pos)
	c.count(b)
	// Replies mux made up that nothing from the server precedes go out now.
	var synth []byte
	if h := c.head(); h != nil && h.synth != nil {
		synth = c.appendSynth(nil)
		if c.core.Pending() == 0 && c.core.Status() == 'I' && len(c.ln.notes) > 0 {
			synth = c.takeNotes(synth)
		}
	}
	// mux answered everything itself (a DEALLOCATE, say): a server taken
	// for this run and owed nothing goes straight back.
	release := len(out) == 0 && c.core.Clean() && c.core.Status() == 'I' &&
		c.head() == nil && c.core.Mode != session.Session && !c.needsStateCheck()
	if release {
		c.server = nil
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
	var b session.Run
	for {
		f, err := c.in.fr.Next(buf[pos:c.in.w], &wholeTracked, c.maxMsg)
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
			counted := true
			if f.Type == 'Q' {
				out, counted = c.trackQuery(out, s, msg)
			} else {
				out = c.trackClientMessage(out, s, msg)
			}
			if counted {
				b.Add(f.Type)
			}
		case f.Kind == session.Begin && f.Type == 'F':
			c.push(expectation{msg: 'F'})
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
