package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/muxpg/mux/internal/rawio"
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
	"github.com/muxpg/mux/session"
	"github.com/muxpg/mux/sqllex"
)

// resetTimeout bounds the internal queries mux runs on a server it holds
// for a leaving client (ROLLBACK, server_reset_query).
const resetTimeout = 5 * time.Second

// clientConn is one client session (client <-> proxy). Its driver (an
// event loop, or a goroutine) reads the client and writes to the server;
// the server's reader writes the replies to the client (ServerData). The
// protocol decisions are the session core's (core); the rest is in owned
// parts: input (the read side), tracker (prepared statements), pinning
// (session state), listening (LISTEN) and parking.
type clientConn struct {
	p    *Proxy
	conn net.Conn // client <-> proxy
	id   uint64

	// Set during login, read-only afterwards.
	user, database string
	key            cancelKey
	pool           *pool.Pool
	reg            *stmtRegistry // the pool's prepared statements
	stats          *poolStats    // the pool's totals
	connected      time.Time
	scramKey       *[32]byte // the ClientKey the client's SCRAM proof showed
	maxMsg         int
	extra          []setting // non-reported settings from startup, sorted

	in input // owned by the session's driver

	mu      sync.Mutex // guards the fields below, and the parts it names
	server  *pool.Server
	core    session.Core // release state, timing and pool mode (set at login)
	tls     bool         // set at login, read-only: the client connection is TLS
	gone    bool         // the client connection is closed or closing
	waiting bool         // waiting for a server from the pool
	track   bool         // set at login, read-only: prepared statements are tracked (prepared.go)
	// poolReleased is not guarded by mu: releasePool sets it, on the
	// goroutine that ends the connection (here for the padding).
	poolReleased bool
	want         params      // tracked reported parameters this client sees
	qtimer       *time.Timer // query_timeout, armed while a query runs

	trk         tracker       // prepared statements (prepared.go), guarded by mu
	pin         pinning       // session state and pinning (sessionstate.go), guarded by mu
	ln          listening     // LISTEN fan-out (notify.go), guarded by mu
	lastBackend atomic.Uint32 // backend PID of the last server used
	attachSeq   atomic.Uint64 // when that server was attached
	park        parking       // parking (park.go)

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

// tracker is the client's prepared statements in transaction and
// statement mode (prepared.go, tracked.go).
type tracker struct {
	stmts        map[string]*preparedStmt // the client's statement names
	portals      map[string]*preparedStmt // statement behind each portal
	unnamedParse []byte                   // the client's last Parse(""), resent when its server changes
	unnamedKey   uint64
	queue        []expectation // replies owed to the client, in order; from qhead
	qhead        int
	sskip        int      // server bytes of a passed-through message still to come
	evicted      []string // scratch for StmtCache.Add
	unnamedHit   stateHit // what the lexer saw in the client's unnamed statement
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

// relay runs the session until the client leaves or fails, or the session
// is parked (errParked).
func (c *clientConn) relay() error {
	for {
		if err := c.fill(); err != nil {
			if err = c.readFailed(err); err != nil {
				return err
			}
			continue
		}
		process := c.process
		if c.track {
			process = c.processTracked
		}
		if err := process(); err != nil {
			return err
		}
	}
}

// rawRead is called by RawConn.Read: it takes a buffer only once data is
// there, so an idle client holds none.
func (c *clientConn) rawRead(fd uintptr) bool {
	if c.in.bp == nil {
		c.in.bp = wire.GetBuf(wire.SmallBufSize)
	}
	for {
		n, err := rawio.Read(fd, (*c.in.bp)[c.in.w:])
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			if c.in.w == 0 {
				wire.PutBuf(c.in.bp)
				c.in.bp = nil
			}
			return false
		}
		c.in.nread, c.in.rerr = n, err
		return true
	}
}

// compactInput makes room at the end of the input buffer for the next
// read.
func (c *clientConn) compactInput() {
	if c.in.bp == nil {
		return
	}
	buf := *c.in.bp
	if c.in.r == c.in.w {
		c.in.r, c.in.w = 0, 0
	} else if c.in.w == len(buf) && c.in.r > 0 {
		c.in.w = copy(buf, buf[c.in.r:c.in.w])
		c.in.r = 0
	}
}

// fill reads more client bytes into the input buffer.
func (c *clientConn) fill() error {
	c.compactInput()
	if c.in.raw != nil {
		c.in.nread, c.in.rerr = 0, nil
		if err := c.in.raw.Read(c.in.readFn); err != nil {
			return err
		}
		if c.in.nread > 0 {
			c.in.w += c.in.nread
			return nil
		}
		return c.in.rerr
	}
	if c.in.bp == nil {
		c.in.bp = wire.GetBuf(wire.SmallBufSize)
	}
	n, err := c.conn.Read((*c.in.bp)[c.in.w:])
	c.in.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.EOF
	}
	return err
}

// Message types the framer hands over whole: a transaction- or
// statement-mode client's Query and Parse are looked into for LISTEN.
var (
	wholeNone  session.TypeSet
	wholeQuery = session.Types('Q', 'P')
)

// process frames the buffered input, forwards whole runs of messages to
// the server, and handles those mux must act on.
func (c *clientConn) process() error {
	pos := c.in.r
	fr0 := c.in.fr
	whole := &wholeNone
	if c.core.Mode != session.Session {
		whole = &wholeQuery
	}
	var run session.Run
	for {
		f, err := c.in.fr.Next((*c.in.bp)[pos:c.in.w], whole, c.maxMsg)
		if err != nil {
			if ferr := c.forward((*c.in.bp)[c.in.r:pos], run); ferr != nil {
				return ferr
			}
			return err
		}
		switch {
		case f.Kind == session.Short:
		case f.Kind == session.Partial:
			c.growFor(f.Len, &pos)
		case f.Kind != session.Rest && f.Type == 'X':
			if err := c.forward((*c.in.bp)[c.in.r:pos], run); err != nil {
				return err
			}
			c.in.r = c.in.w
			return errTerminate
		case f.Kind == session.Whole && whole.Has(f.Type):
			done, err := c.inspect(pos, f.Len, &run)
			if err != nil {
				return err
			}
			if !done {
				run.Add(f.Type)
			}
			pos += f.Len
			continue
		default:
			if f.Kind != session.Rest {
				run.Add(f.Type)
			}
			pos += f.Len
			continue
		}
		break
	}
	err := c.forward((*c.in.bp)[c.in.r:pos], run)
	if err == errWaitServer || err == errOffload {
		// Nothing was forwarded: processed again once a server is there.
		c.in.fr = fr0
		return err
	}
	c.consumed(pos)
	return err
}

// inspect looks into a whole Query or Parse of n bytes at pos for LISTEN,
// which transaction and statement mode refuse. done reports that it
// forwarded the run so far and the refusal in the message's place.
func (c *clientConn) inspect(pos, n int, run *session.Run) (done bool, err error) {
	m := (*c.in.bp)[pos : pos+n]
	// The byte filter first: lexOptions takes c.mu.
	if findWords(m[wire.HeaderLen:])&wordListen == 0 {
		return false, nil
	}
	repl := refuseListen(m, c.lexOptions())
	if repl == nil {
		return false, nil
	}
	if err := c.forward((*c.in.bp)[c.in.r:pos], *run); err != nil {
		return false, err
	}
	*run = session.Run{}
	c.in.r = pos
	var rr session.Run
	rr.Add(m[0])
	// Input is consumed only once forwarded: a loop-driven client that
	// must wait for a server runs this again.
	if err := c.forward(repl, rr); err != nil {
		return false, err
	}
	c.in.r = pos + n
	return true, nil
}

// consumed marks the input up to pos processed, and gives the buffer back
// once all of it is.
func (c *clientConn) consumed(pos int) {
	c.in.r = pos
	if c.in.r == c.in.w {
		c.in.r, c.in.w = 0, 0
		wire.PutBuf(c.in.bp)
		c.in.bp = nil
	}
}

// lexOptions describes the client's query text for the SQL lexer.
func (c *clientConn) lexOptions() sqllex.Options {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lexOptionsLocked()
}

func (c *clientConn) lexOptionsLocked() sqllex.Options {
	return sqllex.Options{
		StandardConformingStrings: c.want.v[paramStandardConformingStrings] != "off",
		Encoding:                  sqllex.EncodingByName(c.want.v[paramClientEncoding]),
	}
}

// growFor makes room for a message of total bytes that must be read whole,
// keeping the unprocessed input.
func (c *clientConn) growFor(total int, pos *int) {
	buf := *c.in.bp
	if total <= len(buf)-c.in.r {
		return
	}
	nb := wire.GetBuf(total + (*pos - c.in.r))
	n := copy(*nb, buf[c.in.r:c.in.w])
	*pos -= c.in.r
	c.in.r, c.in.w = 0, n
	wire.PutBuf(c.in.bp)
	c.in.bp = nb
}

// forward writes a run of client messages to the session's server,
// acquiring one first if the client holds none.
func (c *clientConn) forward(data []byte, b session.Run) error {
	if len(data) == 0 {
		return nil
	}
	if c.sink != nil {
		return c.sink(data, b)
	}
	// Checking for a server and counting what this run adds must be one
	// step: the server's read goroutine may release the server between
	// them, and the bytes would then reach a server the client no longer
	// holds.
	s, err := c.holdServer()
	if err != nil {
		return err
	}
	c.count(b)
	c.mu.Unlock()
	c.stats.bytesIn.Add(int64(len(data)))
	if err := c.serverWrite(s, data); err != nil {
		return wire.Fatal(wire.CodeConnectionFailure, "server connection lost: %v", err)
	}
	return nil
}

// count applies a run's effect on the release state. c.mu must be held.
func (c *clientConn) count(b session.Run) {
	starts, awaits := c.core.Sent(b, time.Now())
	if starts && b.Syncs > 0 {
		c.armQueryTimeout()
	}
	if awaits && !c.park.idleDeadline.IsZero() {
		// idle_transaction_timeout is for a client that sends nothing:
		// not while it waits for its query's result.
		c.setIdleDeadline(time.Time{})
	}
}

// rollbackAndRelease ends an open transaction on a server the client left
// and returns it to the pool, or closes it if that fails.
func (c *clientConn) rollbackAndRelease(s *pool.Server) {
	if _, err := execReset(s, "ROLLBACK"); err != nil {
		s.MarkBroken()
	}
	c.pool.Release(s)
}

// terminate closes the client connection; its goroutine then finishes.
func (c *clientConn) terminate() {
	c.mu.Lock()
	c.gone = true
	c.mu.Unlock()
	_ = c.conn.Close()
	c.wake()
}

// finish ends a session: reports err to the client if it is one mux can
// phrase, and returns or closes the server the client held.
func (c *clientConn) finish(err error) {
	c.mu.Lock()
	if c.qtimer != nil {
		c.qtimer.Stop()
	}
	c.mu.Unlock()
	if c.ln.listens != nil {
		if n := c.p.existingNotifier(poolKey{c.database, c.user}); n != nil {
			n.forget(c)
		}
	}
	if c.in.bp != nil {
		wire.PutBuf(c.in.bp)
		c.in.bp = nil
	}
	var we *wire.Error
	switch {
	case err == nil, errors.Is(err, errTerminate), errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed):
	case errors.As(err, &we):
		c.sendError(we)
		c.logger().Info("closing client", zap.String("sqlstate", we.Code), zap.String("reason", we.Message))
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.mu.Lock()
		inTx := c.server != nil
		c.mu.Unlock()
		if inTx {
			c.sendError(wire.Fatal(wire.CodeIdleInTransactionTimeout, "terminating connection due to idle-in-transaction timeout (idle_transaction_timeout)"))
		} else {
			c.sendError(wire.Fatal(wire.CodeIdleSessionTimeout, "terminating connection due to idle-session timeout (client_idle_timeout)"))
		}
		c.logger().Info("closing idle client")
	default:
		if ce := c.logger().Check(zap.DebugLevel, "client connection ended"); ce != nil {
			ce.Write(zap.Error(err))
		}
	}
	c.mu.Lock()
	c.waitCheck()
	s := c.server
	c.server = nil
	c.gone = true
	clean := c.core.Clean()
	status := c.core.Status()
	pinned, loaded := c.pin.reason != "", c.pin.loaded
	c.mu.Unlock()
	if s == nil {
		return
	}
	s.SetHandler(nil)
	if !clean || loaded {
		// Mid-query or mid-pipeline the server's state is unknown; after
		// LOAD it can never be reset.
		s.MarkBroken()
		c.pool.Release(s)
		return
	}
	var q string
	switch {
	case status != 'I':
		q = "ROLLBACK"
	case c.core.Mode == session.Session:
		q = c.p.config().ServerResetQuery
	}
	if q != "" {
		if _, err := execReset(s, q); err != nil {
			s.MarkBroken()
		} else if c.core.Mode == session.Session {
			// DISCARD ALL / RESET ALL put every setting back to its default.
			s.Applied = map[string]string{}
		}
	}
	if pinned && !s.Broken() {
		// A pinned client's state (locks, temporary tables, …) must not
		// reach the next client.
		c.resetServer(s)
	}
	c.pool.Release(s)
}
