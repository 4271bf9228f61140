package session

// The client side of tracking: every message that names a statement is
// rewritten for the server the client holds now, and the replies it is
// owed are queued (tracker.go).

import (
	"bytes"
	"strings"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/sqllex"
)

// ClientMessage rewrites one whole client message for server s, appending
// what the server is to receive to dst and queueing the replies. counted
// is false when mux answers the message itself and the server owes
// nothing for it (a Query mux answered: LISTEN, DEALLOCATE).
func (t *Tracker) ClientMessage(dst []byte, s Server, msg []byte, h Host) (out []byte, counted bool) {
	switch typ := msg[0]; typ {
	case 'Q':
		return t.query(dst, s, msg, h)
	case 'P':
		return t.parse(dst, s, msg, h), true
	case 'B':
		return t.bind(dst, s, msg, h), true
	case 'D':
		return t.describe(dst, s, msg), true
	case 'C':
		return t.close(dst, s, msg), true
	case 'E':
		portal, _, _ := wire.CString(msg[wire.HeaderLen:])
		t.push(expectation{msg: 'E', stmt: t.portals[string(portal)]})
	case 'S', 'F':
		if typ == 'F' {
			h.FunctionCall()
		}
		t.push(expectation{msg: typ})
	}
	// Flush, COPY messages: nothing owed.
	return append(dst, msg...), true
}

// pass sends msg (Parse, Bind, Describe or Close) as it is: unnamed
// statements, portals, malformed messages. The server answers.
func (t *Tracker) pass(dst, msg []byte) []byte {
	t.push(expectation{msg: msg[0]})
	return append(dst, msg...)
}

func (t *Tracker) parse(dst []byte, s Server, msg []byte, h Host) []byte {
	name, rest, ok1 := wire.CString(msg[wire.HeaderLen:])
	_, _, ok2 := wire.CString(rest)
	if !ok1 || !ok2 {
		return t.pass(dst, msg) // malformed: let Postgres say so
	}
	chk := h.CheckText(msg)
	if chk.Msg != nil {
		msg = chk.Msg
		name, rest, ok1 = wire.CString(msg[wire.HeaderLen:])
	}
	query, types, ok2 := wire.CString(rest)
	switch {
	case !ok1 || !ok2:
		return t.pass(dst, msg)
	case chk.Refuse != "":
		return t.appendRaise(dst, s, 'P', "0A000", chk.Refuse)
	case len(name) == 0:
		t.unnamedHit = chk.Hit
		t.unnamedKey = unnamedKeys.Add(1)
		t.unnamedParse = append(t.unnamedParse[:0], msg...)
		*s.Unnamed = t.unnamedKey
		return t.pass(dst, msg)
	case t.passes():
		t.passNamed(string(name), chk.Hit)
		return t.pass(dst, msg)
	}
	t.reg.clientParses.Add(1)
	if h.Status() == 'E' {
		// An aborted transaction refuses the Parse (25P02); let the
		// server say so, registering nothing.
		return t.appendRaise(dst, s, 'P', "25P02", "current transaction is aborted, commands ignored until end of transaction block")
	}
	if _, dup := t.stmts[string(name)]; dup {
		return t.appendRaise(dst, s, 'P', "42P05", "prepared statement \""+string(name)+"\" already exists")
	}
	st := t.reg.acquire(query, types)
	t.stmts[string(name)] = st
	if s.Stmts.Has(st.Name) {
		t.reg.hits.Add(1)
		t.push(expectation{msg: 'P', synth: parseComplete, stmt: st, name: string(name)})
		return dst
	}
	return t.prepareOn(dst, s, st, string(name), false)
}

func (t *Tracker) bind(dst []byte, s Server, msg []byte, h Host) []byte {
	portal, rest, ok1 := wire.CString(msg[wire.HeaderLen:])
	name, params, ok2 := wire.CString(rest)
	if !ok1 || !ok2 {
		return t.pass(dst, msg)
	}
	if len(name) == 0 {
		var refused bool
		if dst, refused = t.ensureUnnamed(dst, s, 'B'); refused {
			return dst
		}
		t.setPortal(portal, nil)
		h.Bound(t.unnamedHit, params)
		return t.pass(dst, msg)
	}
	st := t.stmts[string(name)]
	if t.passes() {
		if st != nil {
			h.Bound(st.hit, params)
		}
		t.setPortal(portal, nil)
		return t.pass(dst, msg)
	}
	if st == nil {
		return t.appendRaise(dst, s, 'B', "26000", "prepared statement \""+string(name)+"\" does not exist")
	}
	h.Bound(st.hit, params)
	dst = t.ensurePrepared(dst, s, st)
	dst = wire.AppendHeader(dst, 'B', len(portal)+1+len(st.Name)+1+len(params))
	dst = append(dst, portal...)
	dst = append(dst, 0)
	dst = append(dst, st.Name...)
	dst = append(dst, 0)
	dst = append(dst, params...)
	t.setPortal(portal, st)
	t.push(expectation{msg: 'B', stmt: st})
	return dst
}

func (t *Tracker) describe(dst []byte, s Server, msg []byte) []byte {
	name, ok := statementTarget(msg[wire.HeaderLen:])
	if !ok {
		return t.pass(dst, msg)
	}
	if len(name) == 0 {
		var refused bool
		if dst, refused = t.ensureUnnamed(dst, s, 'D'); refused {
			return dst
		}
		return t.pass(dst, msg)
	}
	if t.passes() {
		return t.pass(dst, msg)
	}
	st := t.stmts[string(name)]
	if st == nil {
		return t.appendRaise(dst, s, 'D', "26000", "prepared statement \""+string(name)+"\" does not exist")
	}
	dst = t.ensurePrepared(dst, s, st)
	dst = appendNamed(dst, 'D', 'S', st.Name)
	t.push(expectation{msg: 'D', stmt: st})
	return dst
}

func (t *Tracker) close(dst []byte, s Server, msg []byte) []byte {
	name, ok := statementTarget(msg[wire.HeaderLen:])
	if !ok {
		return t.pass(dst, msg)
	}
	if len(name) == 0 {
		t.unnamedParse = nil
		if *s.Unnamed == t.unnamedKey {
			*s.Unnamed = 0
		}
		return t.pass(dst, msg)
	}
	if t.passes() {
		delete(t.stmts, string(name))
		return t.pass(dst, msg)
	}
	// The server copy may serve other clients: only the client's name
	// goes, and mux answers.
	if st := t.stmts[string(name)]; st != nil {
		delete(t.stmts, string(name))
		t.reg.release(st)
	}
	t.push(expectation{msg: 'C', synth: closeComplete})
	return dst
}

// passNamed keeps what the session-state filter saw in the text of the
// named statement a pass-through tracker lets by, for its Binds; a text
// that cannot change state needs no entry.
func (t *Tracker) passNamed(name string, hit StateHit) {
	if hit.May {
		t.stmts[name] = &Stmt{hit: hit}
	} else {
		delete(t.stmts, name)
	}
}

func (t *Tracker) setPortal(portal []byte, st *Stmt) {
	if st == nil {
		if len(t.portals) > 0 {
			delete(t.portals, string(portal))
		}
		return
	}
	if t.portals == nil {
		t.portals = map[string]*Stmt{}
	} else if len(t.portals) > 64 {
		clear(t.portals) // portals end with their transaction; keep this small
	}
	t.portals[string(portal)] = st
}

// ensurePrepared makes sure server s has st, appending the Parse (and
// Closes of evicted statements) to dst with swallowed replies.
func (t *Tracker) ensurePrepared(dst []byte, s Server, st *Stmt) []byte {
	if s.Stmts.Has(st.Name) {
		t.reg.hits.Add(1)
		return dst
	}
	return t.prepareOn(dst, s, st, "", true)
}

// prepareOn appends a Parse of st for server s; swallow hides its
// ParseComplete (mux's own Parse), name is the client's name for st when
// the client asked for this Parse.
func (t *Tracker) prepareOn(dst []byte, s Server, st *Stmt, name string, swallow bool) []byte {
	t.evicted = s.Stmts.Add(st.Name, t.evicted[:0])
	for _, old := range t.evicted {
		dst = appendNamed(dst, 'C', 'S', old)
		t.push(expectation{msg: 'C', swallow: true})
		t.reg.evictions.Add(1)
	}
	t.reg.serverParses.Add(1)
	dst = append(dst, st.parse...)
	t.push(expectation{msg: 'P', swallow: swallow, stmt: st, name: name})
	return dst
}

// ensureUnnamed re-issues the client's last unnamed Parse if server s does
// not hold it, before a Bind or Describe of the unnamed statement. A client
// that never prepared one must not reach another client's: it gets
// Postgres's error.
func (t *Tracker) ensureUnnamed(dst []byte, s Server, msg byte) (out []byte, refused bool) {
	if t.unnamedParse != nil {
		if *s.Unnamed != t.unnamedKey {
			dst = append(dst, t.unnamedParse...)
			t.push(expectation{msg: 'P', swallow: true})
			*s.Unnamed = t.unnamedKey
		}
		return dst, false
	}
	if *s.Unnamed != 0 {
		return t.appendRaise(dst, s, msg, "26000", "unnamed prepared statement does not exist"), true
	}
	return dst, false
}

// appendRaise appends Parse/Bind/Execute of raiseSQL; the client sees only
// the error, in place of the reply to message msg.
func (t *Tracker) appendRaise(dst []byte, s Server, msg byte, code, text string) []byte {
	q := raiseSQL(code, text)
	dst = appendParse(dst, "", []byte(q), []byte{0, 0})
	dst = append(dst, 'B', 0, 0, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0) // unnamed portal/statement, no params or formats
	dst = append(dst, 'E', 0, 0, 0, 9, 0, 0, 0, 0, 0)
	*s.Unnamed = muxUnnamedKey
	t.push(expectation{msg: 'P', swallow: true})
	t.push(expectation{msg: 'B', swallow: true})
	t.push(expectation{msg: msg})
	return dst
}

// raiseSQL is a statement that makes the server itself raise an error, so
// that inside a transaction block the transaction is aborted exactly as
// Postgres would abort it.
func raiseSQL(code, msg string) string {
	return `DO $mux$BEGIN RAISE EXCEPTION USING ERRCODE = '` + code + `', MESSAGE = '` +
		strings.ReplaceAll(msg, "'", "''") + `'; END$mux$`
}

// query handles a simple Query: the host's look at its text (LISTEN,
// pin_policy), DEALLOCATE of a client's statement name (answered by mux,
// since the server knows the statement by another name), and DISCARD ALL /
// DEALLOCATE ALL (which empty the server's statements).
func (t *Tracker) query(dst []byte, s Server, msg []byte, h Host) (out []byte, counted bool) {
	chk := h.CheckText(msg)
	if chk.Answer != nil {
		t.push(expectation{msg: 'Q', synth: chk.Answer, synthZ: true})
		return dst, false
	}
	if chk.Msg != nil {
		msg = chk.Msg
	}
	if chk.Refuse != "" {
		*s.Unnamed = 0
		dst = wire.AppendQuery(dst, raiseSQL("0A000", chk.Refuse))
		t.push(expectation{msg: 'Q'})
		return dst, true
	}
	var clearKind byte
	if chk.Lex {
		sql := bytes.TrimSuffix(msg[wire.HeaderLen:], []byte{0})
		kind, dealloc := clearsIn(sql, chk.Opt)
		if dealloc != "" && h.Status() != 'E' && !t.passes() {
			if st := t.stmts[dealloc]; st != nil {
				delete(t.stmts, dealloc)
				t.reg.release(st)
				t.push(expectation{msg: 'Q', synth: deallocateComplete, synthZ: true})
				return dst, false
			}
			// Not one of the client's protocol-level statements: an
			// SQL-level PREPARE on this server, or nothing (then Postgres
			// answers 26000 itself).
		}
		clearKind = kind
	}
	if clearKind != 0 {
		t.Forget()
		if clearKind == 'D' {
			t.unnamedParse = nil
		}
	}
	*s.Unnamed = 0
	dst = append(dst, msg...)
	t.push(expectation{msg: 'Q', clear: clearKind})
	return dst, true
}

// clearsIn lexes a Query's text for what empties a server's statements:
// kind 'D' for DISCARD ALL, 'A' for DEALLOCATE ALL; and, when the text is
// one lone "DEALLOCATE [PREPARE] name", that name.
func clearsIn(sql []byte, opt sqllex.Options) (kind byte, dealloc string) {
	n := 0
	var name []byte
	sqllex.Scan(sql, opt, func(st sqllex.Statement) bool {
		n++
		kw := st.Keywords
		switch {
		case kw[0] == sqllex.KwDiscard && kw[1] == sqllex.KwAll:
			kind = 'D'
		case kw[0] == sqllex.KwDeallocate && (kw[1] == sqllex.KwAll || kw[1] == sqllex.KwPrepare && kw[2] == sqllex.KwAll):
			kind = 'A'
		case kw[0] == sqllex.KwDeallocate:
			from := st.Words[0].End
			if kw[1] == sqllex.KwPrepare {
				from = st.Words[1].End
			}
			name = sql[from:st.End]
		}
		return true
	})
	if n == 1 && name != nil {
		dealloc, _ = IdentName(name)
	}
	return kind, dealloc
}

// deallocateComplete is CommandComplete "DEALLOCATE".
var deallocateComplete = []byte{'C', 0, 0, 0, 15, 'D', 'E', 'A', 'L', 'L', 'O', 'C', 'A', 'T', 'E', 0}

// IdentName reads one SQL identifier (bare: folded to lower case; or
// "quoted") filling the whole of b apart from spaces.
func IdentName(b []byte) (string, bool) {
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

// Message builders and parsers for the extended protocol.

func appendParse(dst []byte, name string, query, types []byte) []byte {
	dst = wire.AppendHeader(dst, 'P', len(name)+1+len(query)+1+len(types))
	dst = append(dst, name...)
	dst = append(dst, 0)
	dst = append(dst, query...)
	dst = append(dst, 0)
	return append(dst, types...)
}

// appendNamed appends a Describe or Close message.
func appendNamed(dst []byte, typ, kind byte, name string) []byte {
	dst = wire.AppendHeader(dst, typ, 1+len(name)+1)
	dst = append(dst, kind)
	dst = append(dst, name...)
	return append(dst, 0)
}

// statementTarget is the statement name a Describe or Close body names,
// if it names a statement ('S') rather than a portal.
func statementTarget(body []byte) (name []byte, ok bool) {
	if len(body) < 2 || body[0] != 'S' {
		return nil, false
	}
	name, _, ok = wire.CString(body[1:])
	return name, ok
}
