package session

import (
	"bytes"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/sqllex"
)

// Tracker is one client's prepared statements in transaction and
// statement mode: the names it has prepared, and the replies the server it
// holds owes it. It rewrites the client's messages for that server
// (ClientMessage, rewrite.go) and the server's replies for the client
// (ServerData). It does no I/O and takes no locks: its owner guards it
// (the proxy's client, under its mu).
type Tracker struct {
	reg          *Registry        // the pool's statements
	stmts        map[string]*Stmt // the client's statement names
	portals      map[string]*Stmt // statement behind each portal
	unnamedParse []byte           // the client's last Parse(""), resent when its server changes
	unnamedKey   uint64
	queue        []expectation // replies owed to the client, in order; from qhead
	qhead        int
	sskip        int      // server bytes of a passed-through message still to come
	evicted      []string // scratch for StmtCache.Add
	unnamedHit   StateHit // what the filter saw in the client's unnamed statement
}

// NewTracker returns a tracker for a client of the pool whose statements
// reg holds.
func NewTracker(reg *Registry) Tracker {
	return Tracker{reg: reg, stmts: map[string]*Stmt{}}
}

// NewPassTracker returns a tracker that leaves named statements alone
// (max_prepared_statements = 0, as PgBouncer with 0): their Parse, Bind,
// Describe, Close and DEALLOCATE reach the server the client holds
// unchanged, and the client must keep to one server for them (session
// mode). Everything else a tracker does goes on: the unnamed statement,
// the session-state filter (SET carried, pins), LISTEN. It has no
// registry; stmts then holds, unregistered, only what the filter saw in
// the text of each named statement, for its Binds.
func NewPassTracker() Tracker {
	return Tracker{stmts: map[string]*Stmt{}}
}

// passes reports whether t leaves named statements alone (NewPassTracker).
func (t *Tracker) passes() bool { return t.reg == nil }

// Host is what a Tracker asks of the session it tracks for: the
// transaction status, and the session-state and LISTEN rules that live
// with the proxy's client. The Tracker calls it with its owner's lock
// held; it must not block.
type Host interface {
	// Status is the transaction status: 'I', 'T' or 'E'.
	Status() byte
	// CheckText looks at the SQL text of a whole Parse or Query message.
	CheckText(msg []byte) TextCheck
	// Bound notes a Bind of a statement whose text hit describes; params
	// is the rest of the Bind after the statement name.
	Bound(hit StateHit, params []byte)
	// FunctionCall notes a FunctionCall: a function may change anything.
	FunctionCall()
	// Replied notes a whole CommandComplete ('C') or ReadyForQuery ('Z')
	// the server sends while replies are owed (LISTEN applies at COMMIT).
	Replied(typ byte, body []byte)
}

// TextCheck is what a Host makes of the text of a Parse or Query.
type TextCheck struct {
	// Msg is the message to go on with: the one checked, or one that
	// takes its place (a LISTEN the server itself is to refuse).
	Msg []byte
	// Hit is what the text may do to session state. A Query's is noted
	// already (it runs now); a Parse's is noted at each Bind.
	Hit StateHit
	// Refuse, when not "", is the error (0A000) the server is to raise in
	// place of the message (pin_policy = error).
	Refuse string
	// Answer, when not nil, is mux's own reply to a Query (LISTEN
	// fan-out), which a ReadyForQuery follows; the Query goes nowhere.
	Answer []byte
	// Lex: a Query's text may DEALLOCATE or DISCARD; lex it with Opt.
	Lex bool
	Opt sqllex.Options
}

// expectation is one reply the client is owed, in order.
type expectation struct {
	msg     byte   // the client message it answers: P B C D E S Q F
	swallow bool   // mux sent the message itself: hide its reply
	synthZ  bool   // with synth: append ReadyForQuery with the current status
	failed  bool   // Q: an error was seen
	clear   byte   // Q: 'D' DISCARD ALL (on success), 'A' DEALLOCATE ALL
	synth   []byte // mux answers itself with these bytes (no server reply)
	stmt    *Stmt  // statement used (P: registered, to undo on failure)
	name    string // P: the client's name for stmt
}

// Fixed replies mux makes up.
var (
	parseComplete = []byte{'1', 0, 0, 0, 4}
	closeComplete = []byte{'3', 0, 0, 0, 4}
)

func (t *Tracker) push(e expectation) { t.queue = append(t.queue, e) }

func (t *Tracker) head() *expectation {
	if t.qhead < len(t.queue) {
		return &t.queue[t.qhead]
	}
	return nil
}

func (t *Tracker) pop() {
	t.queue[t.qhead] = expectation{}
	t.qhead++
	if t.qhead == len(t.queue) {
		t.queue, t.qhead = t.queue[:0], 0
	}
}

// Owes reports whether any reply is owed to the client.
func (t *Tracker) Owes() bool { return t.qhead < len(t.queue) }

// OweReply queues the reply to a message that streamed through unchanged
// (a FunctionCall too large to rewrite).
func (t *Tracker) OweReply(typ byte) { t.push(expectation{msg: typ}) }

// Reset forgets the replies owed: the client let go of its server, or
// takes a new one.
func (t *Tracker) Reset() { t.queue, t.qhead, t.sskip = t.queue[:0], 0, 0 }

// Trim drops scratch space, if nothing is owed, for a client going idle
// for long (parked).
func (t *Tracker) Trim() {
	if !t.Owes() {
		t.queue, t.qhead, t.evicted = nil, 0, nil
	}
}

// Len is how many statement names the client has prepared (0 for a
// tracker that leaves them alone: it does not know).
func (t *Tracker) Len() int {
	if t.passes() {
		return 0
	}
	return len(t.stmts)
}

// Forget gives back a leaving client's statement names.
func (t *Tracker) Forget() {
	for name, st := range t.stmts {
		delete(t.stmts, name)
		if !t.passes() {
			t.reg.release(st)
		}
	}
}

// HasAnswers reports whether replies mux makes up itself are next.
func (t *Tracker) HasAnswers() bool {
	e := t.head()
	return e != nil && e.synth != nil
}

// AppendAnswers appends every made-up reply now at the head of the queue;
// status is the transaction status a made-up ReadyForQuery carries.
func (t *Tracker) AppendAnswers(dst []byte, status byte) []byte {
	for e := t.head(); e != nil && e.synth != nil; e = t.head() {
		dst = append(dst, e.synth...)
		if e.synthZ {
			dst = wire.AppendReadyForQuery(dst, status)
		}
		t.pop()
	}
	return dst
}

// undoParse forgets a statement whose Parse did not run on server s.
func (t *Tracker) undoParse(s Server, e *expectation) {
	if e.msg != 'P' || e.stmt == nil {
		return
	}
	if e.synth == nil {
		// mux's Parse never ran: the server lacks the statement. (A made-up
		// ParseComplete stands for a statement the server does have.)
		s.Stmts.Remove(e.stmt.Name)
	}
	if e.name != "" && t.stmts[e.name] == e.stmt {
		delete(t.stmts, e.name)
		t.reg.release(e.stmt)
	}
}

// serverError updates the queue for an ErrorResponse (body, if whole).
func (t *Tracker) serverError(s Server, e *expectation, body []byte, whole bool) {
	switch e.msg {
	case 'Q', 'F':
		e.failed = true
		return
	case 'S':
		return
	}
	if whole && e.stmt != nil {
		if _, code := wire.ErrorSeverityAndCode(body); string(code) == wire.CodeFeatureNotSupported &&
			bytes.Contains(body, []byte("cached plan must not change result type")) {
			t.reg.retire(e.stmt)
		}
	}
	// Postgres skips every message up to the next Sync.
	t.undoParse(s, e)
	t.pop()
	for e = t.head(); e != nil && e.msg != 'S'; e = t.head() {
		t.undoParse(s, e)
		t.pop()
	}
}

// serverMessage updates the queue for one server message (typ, and its
// body if whole) and reports whether the client is to see it.
func (t *Tracker) serverMessage(s Server, typ byte, body []byte, whole bool, h Host) bool {
	e := t.head()
	if e == nil {
		return true
	}
	switch typ {
	case 'E':
		t.serverError(s, e, body, whole)
	case '1', '2', '3':
		swallow := e.swallow
		if typ == '1' && e.stmt != nil {
			e.stmt.verified.Store(true)
		}
		t.pop()
		return !swallow
	case 'T', 'n':
		if e.msg == 'D' {
			t.pop()
		}
	case 'C', 'I', 's':
		if typ == 'C' && whole {
			h.Replied(typ, body)
		}
		if e.msg == 'E' {
			t.pop()
		}
	case 'Z':
		if whole {
			h.Replied(typ, body)
		}
		t.readyForQuery(s, e)
	}
	return true
}

// readyForQuery updates the queue for a ReadyForQuery.
func (t *Tracker) readyForQuery(s Server, e *expectation) {
	switch e.msg {
	case 'S', 'F':
		t.pop()
	case 'Q':
		if e.clear == 'A' || (e.clear == 'D' && !e.failed) {
			s.Stmts.Clear()
			*s.Unnamed = 0
		}
		t.pop()
	}
}

// ServerData filters a batch of bytes from server s through the queue:
// swallowed replies are cut out and made-up replies inserted. It returns
// data itself when nothing changed, else a pooled buffer (*bp) to return.
func (t *Tracker) ServerData(s Server, data []byte, h Host) (out []byte, bp *[]byte) {
	pos, seg := 0, 0
	if t.sskip > 0 {
		pos = min(t.sskip, len(data))
		t.sskip -= pos
	}
	var buf []byte
	for pos < len(data) {
		typ, l := wire.Header(data[pos:])
		end := pos + 1 + l
		whole := end <= len(data)
		if !whole {
			t.sskip = end - len(data)
			end = len(data)
		}
		var body []byte
		if whole {
			body = data[pos+wire.HeaderLen : end]
		}
		keep := t.serverMessage(s, typ, body, whole, h)
		if keep && !t.HasAnswers() {
			pos = end
			continue
		}
		if bp == nil {
			bp = wire.GetBuf(len(data) + 256)
			buf = (*bp)[:0]
		}
		if keep {
			buf = append(buf, data[seg:end]...)
		} else {
			buf = append(buf, data[seg:pos]...)
		}
		seg = end
		buf = t.AppendAnswers(buf, h.Status())
		pos = end
	}
	if bp == nil {
		return data, nil
	}
	buf = append(buf, data[seg:]...)
	*bp = buf
	return buf, bp
}

// Unattached answers, with no server, a run of whole client messages when
// every one of them can be: Parse of a named statement that a server of
// the pool has already parsed, Close of a statement name, Flush and Sync.
// libpq's PQprepare (pgbench -M prepared) is such a run; answering it
// without a server means a client preparing outside a transaction never
// waits for one, so it cannot be starved by clients of its own
// (single-threaded) program that hold servers mid-transaction. Errors in
// such a statement surface at its first Bind, on a server. It reports
// false, changing nothing, if the run needs a server.
func (t *Tracker) Unattached(run []byte) ([]byte, bool) {
	if t.passes() || !t.answerable(run) {
		return nil, false
	}
	var out []byte
	for pos := 0; pos < len(run); {
		typ, l := wire.Header(run[pos:])
		body := run[pos+wire.HeaderLen : pos+1+l]
		switch typ {
		case 'S':
			out = wire.AppendReadyForQuery(out, 'I')
		case 'C':
			name, _, _ := wire.CString(body[1:])
			if st := t.stmts[string(name)]; st != nil {
				delete(t.stmts, string(name))
				t.reg.release(st)
			}
			out = append(out, closeComplete...)
		case 'P':
			t.parseUnattached(body)
			out = append(out, parseComplete...)
		}
		pos += 1 + l
	}
	return out, true
}

// answerable reports whether Unattached can answer run.
func (t *Tracker) answerable(run []byte) bool {
	pos := 0
	for pos < len(run) {
		if len(run)-pos < wire.HeaderLen {
			return false
		}
		typ, l := wire.Header(run[pos:])
		if l < 4 || pos+1+l > len(run) {
			return false // only whole runs
		}
		body := run[pos+wire.HeaderLen : pos+1+l]
		switch typ {
		case 'S', 'H':
		case 'C':
			if name, ok := statementTarget(body); !ok || len(name) == 0 {
				return false
			}
		case 'P':
			name, rest, ok1 := wire.CString(body)
			query, types, ok2 := wire.CString(rest)
			if !ok1 || !ok2 || len(name) == 0 {
				return false
			}
			if _, dup := t.stmts[string(name)]; dup || !t.reg.isVerified(query, types) {
				return false
			}
		default:
			return false
		}
		pos += 1 + l
	}
	return pos > 0
}

// parseUnattached registers the client's name of a Parse answered without
// a server.
func (t *Tracker) parseUnattached(body []byte) {
	name, rest, _ := wire.CString(body)
	query, types, _ := wire.CString(rest)
	st := t.reg.lookupVerified(query, types)
	if st == nil {
		// Forgotten since the check: the client will see the statement
		// missing at Bind (26000).
		return
	}
	t.reg.clientParses.Add(1)
	t.reg.hits.Add(1)
	t.stmts[string(name)] = st
}
