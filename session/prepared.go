package session

import (
	"strconv"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/muxpg/mux/pool"
)

// Prepared statements in transaction and statement mode.
//
// A client's named statements live in mux, not on any one server: Parse
// registers the client's name against a Stmt (one per distinct query text
// and parameter types, shared by every client of the pool), and the server
// sees only the statement's mux-chosen name. Before a Bind or Describe
// needs it, the Tracker prepares the statement on the server the client
// holds now if that server lacks it, and swallows the ParseComplete the
// client did not ask for. What mux answers itself (ParseComplete for a
// statement the server already has, CloseComplete) is queued in response
// order: the expectation queue mirrors every reply the server owes, so
// made-up replies go out exactly where Postgres would have put them, and
// are dropped where an error makes Postgres skip to the next Sync.

// StateHit is what the session-state filter saw in some SQL text (the
// proxy's scan fills it; the Tracker keeps it with each statement, so that
// a Bind can say what the statement it runs may change).
type StateHit struct {
	May       bool     // session state may have changed: ask the server
	Load      bool     // LOAD: the server can never be reset
	SetConfig bool     // calls set_config: its Bind parameters may name settings
	Pin       string   // a statement that creates state mux cannot carry ("" if none)
	Custom    []string // custom ("x.y") setting names the text mentions
}

// Stmt is one distinct statement, prepared on servers under Name.
type Stmt struct {
	Name     string
	key      string
	parse    []byte      // a Parse message for Name
	refs     int         // client names registered to it; guarded by Registry.mu
	verified atomic.Bool // a server of the pool has parsed it successfully
	hit      StateHit    // what the session-state filter sees in its text
}

// PreparedStats counts prepared statement work, for SHOW and metrics.
type PreparedStats struct {
	ClientParses int64 // Parse messages with a name from clients
	ServerParses int64 // Parse messages mux sent to servers
	Hits         int64 // client Parse or use answered from a server's cache
	Evictions    int64 // statements closed on a server to stay in bounds
}

// Registry maps statement texts to Stmts, for one pool (a statement that
// parses in one database need not in another). Unlike a Tracker, it is
// shared by the pool's clients and safe for concurrent use.
type Registry struct {
	scan func(query []byte) StateHit // set at creation

	mu    sync.Mutex
	byKey map[string]*Stmt
	seq   uint64

	clientParses, serverParses, hits, evictions atomic.Int64
}

// NewRegistry returns an empty registry; scan says what a statement's text
// may do to session state (it runs once per distinct statement).
func NewRegistry(scan func(query []byte) StateHit) *Registry {
	return &Registry{scan: scan, byKey: map[string]*Stmt{}}
}

func stmtKey(query, types []byte) string { return string(types) + "\x00" + string(query) }

// acquire returns the statement for (query, param types), registering one
// more client name for it.
func (r *Registry) acquire(query, types []byte) *Stmt {
	key := stmtKey(query, types)
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.byKey[key]
	if st == nil {
		r.seq++
		st = &Stmt{Name: "_mux_" + strconv.FormatUint(r.seq, 10), key: key}
		if r.scan != nil {
			st.hit = r.scan(query)
		}
		st.parse = appendParse(nil, st.Name, query, types)
		r.byKey[key] = st
	}
	st.refs++
	return st
}

// lookupVerified is acquire for a statement some server has already
// parsed; it returns nil (registering nothing) otherwise.
func (r *Registry) lookupVerified(query, types []byte) *Stmt {
	key := stmtKey(query, types)
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.byKey[key]
	if st == nil || !st.verified.Load() {
		return nil
	}
	st.refs++
	return st
}

// isVerified reports whether (query, types) is a statement some server has
// parsed.
func (r *Registry) isVerified(query, types []byte) bool {
	key := stmtKey(query, types)
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.byKey[key]
	return st != nil && st.verified.Load()
}

// release drops one client name's hold; an unused statement is forgotten
// (server copies stay until their caches evict them).
func (r *Registry) release(st *Stmt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st.refs--
	if st.refs <= 0 && r.byKey[st.key] == st {
		delete(r.byKey, st.key)
	}
}

// retire makes later Parses of st's text use a new server-side name: the
// server copies of st have a stale plan (0A000 after DDL).
func (r *Registry) retire(st *Stmt) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.byKey[st.key] == st {
		delete(r.byKey, st.key)
	}
}

// Mem reports how many statements r holds and the bytes they take.
func (r *Registry) Mem() (n, bytes int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, st := range r.byKey {
		bytes += int(unsafe.Sizeof(*st)) + len(st.key) + len(st.parse)
	}
	return len(r.byKey), bytes
}

// Stats returns the counters.
func (r *Registry) Stats() PreparedStats {
	return PreparedStats{
		ClientParses: r.clientParses.Load(),
		ServerParses: r.serverParses.Load(),
		Hits:         r.hits.Load(),
		Evictions:    r.evictions.Load(),
	}
}

// Server is what a Tracker sees of the server the client holds: owned by
// whoever holds that server, like the pool.Server fields they point to.
type Server struct {
	Stmts   *pool.StmtCache // the statements prepared on it
	Unnamed *uint64         // whose Parse("") it holds: a client's unnamed key, muxUnnamedKey, or 0
}

// ServerOf is the Tracker's view of s.
func ServerOf(s *pool.Server) Server { return Server{Stmts: s.Stmts, Unnamed: &s.UnnamedKey} }

// unnamedKeys numbers client Parse(”) messages so a server knows whose
// unnamed statement it holds. 1 is reserved for mux's own.
var unnamedKeys atomic.Uint64

const muxUnnamedKey = 1

func init() { unnamedKeys.Store(muxUnnamedKey) }
