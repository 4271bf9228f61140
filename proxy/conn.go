package proxy

import (
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/muxpg/mux/internal/rawio"
	"github.com/muxpg/mux/pool"
	"github.com/muxpg/mux/session"
	"go.uber.org/zap"
)

// A client session's state: clientConn and the parts it owns.

// resetTimeout bounds the internal queries mux runs on a server it holds
// for a leaving client (ROLLBACK, server_reset_query).
const resetTimeout = 5 * time.Second

// clientConn is one client session (client <-> proxy). Its driver (an
// event loop, or a goroutine) reads the client and writes to the server;
// the server's reader writes the replies to the client (ServerData). The
// protocol decisions are the session core's (core, and trk for prepared
// statements); the rest is in owned parts: input (the read side), pinning
// (session state), listening (LISTEN) and parking.
type clientConn struct {
	p    *Proxy
	conn net.Conn // client <-> proxy
	id   uint64

	// Set during login, read-only afterwards.
	user, database string
	key            cancelKey
	pool           *pool.Pool
	stats          *poolStats // the pool's totals
	connected      time.Time
	scramKey       *[32]byte // the ClientKey the client's SCRAM proof showed
	lim            session.Limits
	extra          []setting // non-reported settings from startup, sorted

	in input // owned by the session's driver

	mu      sync.Mutex // guards the fields below, and the parts it names
	server  *pool.Server
	core    session.Core // release state, timing and pool mode (set at login)
	tls     bool         // set at login, read-only: the client connection is TLS
	gone    bool         // the client connection is closed or closing
	waiting bool         // waiting for a server from the pool
	track   bool         // set at login, read-only: transaction or statement mode, trk sees every message (tracked.go)
	// poolReleased is not guarded by mu: releasePool sets it, on the
	// goroutine that ends the connection (here for the padding).
	poolReleased bool
	want         params      // tracked reported parameters this client sees
	qtimer       *time.Timer // query_timeout, armed while a query runs

	trk         session.Tracker // prepared statements (prepared.go), guarded by mu
	pin         pinning         // session state and pinning (sessionstate.go), guarded by mu
	ln          listening       // LISTEN fan-out (notify.go), guarded by mu
	rw          *readSplit      // read/write split (rwsplit.go), guarded by mu; nil until used
	lastBackend atomic.Uint32   // backend PID of the last server used
	attachSeq   atomic.Uint64   // when that server was attached
	park        parking         // parking (park.go)

	wr            *rawio.Writer // raw writes to conn, made at the first write after login (guarded by wmu)
	wmu           sync.Mutex    // serialises writes to conn
	writeDeadline int64         // guarded by wmu: the write deadline set last, in Unix nanoseconds

	// sink, when set, receives forwarded runs instead of a server: the
	// framing fuzz target drives the production read loop through it.
	sink func(data []byte, b session.Run) error

	// lc drives the client from an event loop (loopclient.go); nil for
	// the goroutine driver. Set before the relay starts.
	lc *loopClient
}

// input is the client's read side, owned by the session's driver.
type input struct {
	raw    syscall.RawConn       // set before the relay starts (under wmu: writes read it)
	readFn func(fd uintptr) bool // c.rawRead, bound once
	bp     *[]byte               // input buffer; nil while idle
	r, w   int                   // unprocessed input is (*bp)[r:w]
	fr     session.Framer        // frames the input
	nread  int
	rerr   error
}

// pinning is what the client may have changed in its server's session
// state, and whether that keeps the server (sessionstate.go).
type pinning struct {
	policy     string        // pin, error or allow
	stateDirty bool          // this transaction may have changed session state
	loaded     bool          // the client ran LOAD: its server can never be reused
	checking   bool          // a state check holds the server
	reason     string        // why the client keeps its server ("" if it does not)
	checkDone  chan struct{} // closed when the check ends
	// customNames are custom settings ("app.x") the client may have set:
	// pg_settings does not list them, so the state check reads them by name.
	customNames map[string]struct{}
}

// listening is the client's LISTEN state (notify.go). listens (made at
// login) is guarded by the pool's notifier's mu, the rest by the client's.
type listening struct {
	listens   map[string]struct{} // channels the client listens on
	pending   []listenOp          // LISTEN/UNLISTEN waiting for COMMIT
	apply     []listenOp          // LISTEN/UNLISTEN to apply before answering
	notes     [][]byte            // notifications waiting for the transaction to end
	sawCommit bool                // the last CommandComplete was COMMIT
}

// parking is the goroutine driver's parking state (park.go).
type parking struct {
	accepted     net.Conn     // the connection as accepted, for connDone
	state        atomic.Int32 // running, parkAsked or parked
	can          bool         // guarded by mu: a plain socket mux can poll itself
	inEpoll      bool         // owned by the session's goroutine: the socket is in the poller's set
	idleSeen     bool         // guarded by mu: a sweep saw the client without a server
	idleDeadline time.Time    // guarded by mu: the read deadline armIdleTimeout set
}

// logger returns a logger carrying the client's identity. It is built on
// demand: an idle client keeps no logger (and its fields) alive.
func (c *clientConn) logger() *zap.Logger {
	fields := []zap.Field{zap.Uint64("client_id", c.id), zap.Stringer("remote", c.conn.RemoteAddr())}
	if c.user != "" {
		fields = append(fields, zap.String("user", c.user), zap.String("database", c.database))
	}
	return c.p.log.With(fields...)
}

// errTerminate ends a session on the client's Terminate.
var errTerminate = errors.New("client terminated")

// startRelay prepares a logged-in session for relaying.
func (c *clientConn) startRelay() {
	raw := rawio.RawConn(c.conn)
	c.wmu.Lock() // writeLocked reads raw from other goroutines
	c.in.raw = raw
	c.wmu.Unlock()
	if raw != nil {
		c.in.readFn = c.rawRead
	}
	c.mu.Lock()
	c.core.Attached()
	c.park.can = c.in.raw != nil && c.p.poller.enabled()
	c.mu.Unlock()
	c.armIdleTimeout()
	c.p.startSweeper()
}
