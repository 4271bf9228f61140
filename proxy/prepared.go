package proxy

import (
	"bytes"
	"strconv"
	"sync"
	"sync/atomic"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
	"github.com/muxpg/mux/sqllex"
)

// Prepared statements in transaction and statement mode.
//
// A client's named statements live in mux, not on any one server: Parse
// registers the client's name against a preparedStmt (one per distinct
// query text and parameter types, shared by every client), and the server
// sees only the statement's mux-chosen name. Before a Bind or Describe
// needs it, mux prepares the statement on the server the client holds now
// if that server lacks it, and swallows the ParseComplete the client did not
// ask for. What mux answers itself (ParseComplete for a statement the server
// already has, CloseComplete) is queued in response order: the expectation
// queue mirrors every reply the server owes, so made-up replies go out
// exactly where Postgres would have put them, and are dropped where an
// error makes Postgres skip to the next Sync.

// preparedStmt is one distinct statement, prepared on servers under name.
type preparedStmt struct {
	name     string
	key      string
	parse    []byte      // a Parse message for name
	refs     int         // client names registered to it; guarded by stmtRegistry.mu
	verified atomic.Bool // a server of the pool has parsed it successfully
	hit      stateHit    // what the lexer sees in its text
}

// PreparedStats counts prepared statement work, for SHOW and metrics.
type PreparedStats struct {
	ClientParses int64 // Parse messages with a name from clients
	ServerParses int64 // Parse messages mux sent to servers
	Hits         int64 // client Parse or use answered from a server's cache
	Evictions    int64 // statements closed on a server to stay in bounds
}

// stmtRegistry maps statement texts to preparedStmts, for one pool (a
// statement that parses in one database need not in another). Safe for
// concurrent use.
type stmtRegistry struct {
	mu    sync.Mutex
	byKey map[string]*preparedStmt
	seq   uint64

	clientParses, serverParses, hits, evictions atomic.Int64
}

func newStmtRegistry() *stmtRegistry {
	return &stmtRegistry{byKey: map[string]*preparedStmt{}}
}

// acquire returns the statement for (query, param types), registering one
// more client name for it.
func (r *stmtRegistry) acquire(query, types []byte) *preparedStmt {
	key := string(types) + "\x00" + string(query)
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.byKey[key]
	if st == nil {
		r.seq++
		st = &preparedStmt{name: "_mux_" + strconv.FormatUint(r.seq, 10), key: key,
			hit: scanState(query, findWords(query), sqllex.Options{StandardConformingStrings: true})}
		st.parse = appendParse(nil, st.name, query, types)
		r.byKey[key] = st
	}
	st.refs++
	return st
}

// lookupVerified is acquire for a statement some server has already
// parsed; it returns nil (registering nothing) otherwise.
func (r *stmtRegistry) lookupVerified(query, types []byte) *preparedStmt {
	key := string(types) + "\x00" + string(query)
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.byKey[key]
	if st == nil || !st.verified.Load() {
		return nil
	}
	st.refs++
	return st
}

// release drops one client name's hold; an unused statement is forgotten
// (server copies stay until their caches evict them).
func (r *stmtRegistry) release(st *preparedStmt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st.refs--
	if st.refs <= 0 && r.byKey[st.key] == st {
		delete(r.byKey, st.key)
	}
}

// retire makes later Parses of st's text use a new server-side name: the
// server copies of st have a stale plan (0A000 after DDL).
func (r *stmtRegistry) retire(st *preparedStmt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byKey[st.key] == st {
		delete(r.byKey, st.key)
	}
}

// Stats returns the counters.
func (r *stmtRegistry) Stats() PreparedStats {
	return PreparedStats{
		ClientParses: r.clientParses.Load(),
		ServerParses: r.serverParses.Load(),
		Hits:         r.hits.Load(),
		Evictions:    r.evictions.Load(),
	}
}

// expectation is one reply the client is owed, in order.
type expectation struct {
	msg     byte          // the client message it answers: P B C D E S Q F
	swallow bool          // mux sent the message itself: hide its reply
	synth   []byte        // mux answers itself with these bytes (no server reply)
	synthZ  bool          // with synth: append ReadyForQuery with the current status
	stmt    *preparedStmt // statement used (P: registered, to undo on failure)
	name    string        // P: the client's name for stmt
	clear   byte          // Q: 'D' DISCARD ALL (on success), 'A' DEALLOCATE ALL
	failed  bool          // Q: an error was seen
}

// Fixed replies mux makes up.
var (
	parseComplete = []byte{'1', 0, 0, 0, 4}
	closeComplete = []byte{'3', 0, 0, 0, 4}
)

// unnamedKeys numbers client Parse(”) messages so a server knows whose
// unnamed statement it holds. 1 is reserved for mux's own.
var unnamedKeys atomic.Uint64

const muxUnnamedKey = 1

func init() { unnamedKeys.Store(muxUnnamedKey) }

func (c *clientConn) push(e expectation) { c.trk.queue = append(c.trk.queue, e) }

func (c *clientConn) head() *expectation {
	if c.trk.qhead < len(c.trk.queue) {
		return &c.trk.queue[c.trk.qhead]
	}
	return nil
}

func (c *clientConn) pop() {
	c.trk.queue[c.trk.qhead] = expectation{}
	c.trk.qhead++
	if c.trk.qhead == len(c.trk.queue) {
		c.trk.queue, c.trk.qhead = c.trk.queue[:0], 0
	}
}

// appendSynth appends every made-up reply now at the head of the queue.
func (c *clientConn) appendSynth(out []byte) []byte {
	for e := c.head(); e != nil && e.synth != nil; e = c.head() {
		out = append(out, e.synth...)
		if e.synthZ {
			out = wire.AppendReadyForQuery(out, c.core.Status())
		}
		c.pop()
	}
	return out
}

// undoParse forgets a statement whose Parse did not run on server s.
func (c *clientConn) undoParse(s *pool.Server, e *expectation) {
	if e.msg != 'P' || e.stmt == nil {
		return
	}
	if e.synth == nil {
		// mux's Parse never ran: the server lacks the statement. (A made-up
		// ParseComplete stands for a statement the server does have.)
		s.Stmts.Remove(e.stmt.name)
	}
	if e.name != "" && c.trk.stmts[e.name] == e.stmt {
		delete(c.trk.stmts, e.name)
		c.reg.release(e.stmt)
	}
}

// trackServerMessage updates the queue for one server message (typ, and
// its body if whole) and reports whether the client is to see it.
func (c *clientConn) trackServerMessage(s *pool.Server, typ byte, body []byte, whole bool) bool {
	e := c.head()
	if e == nil {
		return true
	}
	switch typ {
	case 'E':
		switch e.msg {
		case 'Q', 'F':
			e.failed = true
			return true
		case 'S':
			return true
		}
		if whole && e.stmt != nil {
			if _, code := wire.ErrorSeverityAndCode(body); string(code) == wire.CodeFeatureNotSupported &&
				bytes.Contains(body, []byte("cached plan must not change result type")) {
				c.reg.retire(e.stmt)
			}
		}
		// Postgres skips every message up to the next Sync.
		c.undoParse(s, e)
		c.pop()
		for e = c.head(); e != nil && e.msg != 'S'; e = c.head() {
			c.undoParse(s, e)
			c.pop()
		}
		return true
	case '1', '2', '3':
		swallow := e.swallow
		if typ == '1' && e.stmt != nil {
			e.stmt.verified.Store(true)
		}
		c.pop()
		return !swallow
	case 'T', 'n':
		if e.msg == 'D' {
			c.pop()
		}
	case 'C', 'I', 's':
		if typ == 'C' && whole {
			c.ln.sawCommit = bytes.HasPrefix(body, []byte("COMMIT"))
		}
		if e.msg == 'E' {
			c.pop()
		}
	case 'Z':
		if whole && len(body) > 0 && body[0] == 'I' && len(c.ln.pending) > 0 {
			c.endTransaction(c.ln.sawCommit)
		}
		switch e.msg {
		case 'S', 'F':
			c.pop()
		case 'Q':
			if e.clear == 'A' || (e.clear == 'D' && !e.failed) {
				s.Stmts.Clear()
				s.UnnamedKey = 0
			}
			c.pop()
		}
	}
	return true
}

// trackServerData filters a batch of server bytes through the queue:
// swallowed replies are cut out and made-up replies inserted. It returns
// data itself when nothing changed, else a pooled buffer (*bp) to return.
// Called with c.mu held.
func (c *clientConn) trackServerData(s *pool.Server, data []byte) (out []byte, bp *[]byte) {
	pos, seg := 0, 0
	if c.trk.sskip > 0 {
		pos = min(c.trk.sskip, len(data))
		c.trk.sskip -= pos
	}
	var buf []byte
	changed := false
	for pos < len(data) {
		typ, l := wire.Header(data[pos:])
		end := pos + 1 + l
		whole := end <= len(data)
		if !whole {
			c.trk.sskip = end - len(data)
			end = len(data)
		}
		var body []byte
		if whole {
			body = data[pos+wire.HeaderLen : end]
		}
		keep := c.trackServerMessage(s, typ, body, whole)
		synth := c.head() != nil && c.head().synth != nil
		if !keep || synth {
			if !changed {
				bp = wire.GetBuf(len(data) + 256)
				buf = (*bp)[:0]
				changed = true
			}
			if keep {
				buf = append(buf, data[seg:end]...)
			} else {
				buf = append(buf, data[seg:pos]...)
			}
			seg = end
			buf = c.appendSynth(buf)
		}
		pos = end
	}
	if !changed {
		return data, nil
	}
	buf = append(buf, data[seg:]...)
	*bp = buf
	return buf, bp
}

// Message builders and parsers for the extended protocol.

// forgetStatements gives back a leaving client's statement names.
func (c *clientConn) forgetStatements() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for name, st := range c.trk.stmts {
		delete(c.trk.stmts, name)
		c.reg.release(st)
	}
}

// isVerified reports whether (query, types) is a statement some server has
// parsed.
func (r *stmtRegistry) isVerified(query, types []byte) bool {
	key := string(types) + "\x00" + string(query)
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.byKey[key]
	return st != nil && st.verified.Load()
}
