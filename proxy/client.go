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

// clientConn is one client session (client <-> proxy). Its goroutine reads
// the client and writes to the server; the server's read goroutine writes
// the replies to the client (ServerData).
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

	// Read state, owned by the client goroutine.
	raw    syscall.RawConn       // set before the relay starts (under wmu: writes read it)
	readFn func(fd uintptr) bool // c.rawRead, bound once
	wr     *rawio.Writer         // raw writes to conn, made at the first write after login (guarded by wmu)
	bp     *[]byte               // input buffer; nil while idle
	r, w   int                   // unprocessed input is (*bp)[r:w]
	fr     session.Framer        // frames the input
	nread  int
	rerr   error

	mu      sync.Mutex // guards the fields below
	server  *pool.Server
	core    session.Core // release state, timing and pool mode (set at login)
	tls     bool         // set at login, read-only: the client connection is TLS
	gone    bool         // the client connection is closed or closing
	waiting bool         // waiting for a server from the pool
	track   bool         // set at login, read-only: prepared statements are tracked (prepared.go)
	want    params       // tracked reported parameters this client sees

	qtimer *time.Timer // query_timeout, armed while a query runs; guarded by mu

	// Prepared statement tracking (transaction and statement mode; see
	// prepared.go), also guarded by mu.
	stmts        map[string]*preparedStmt // the client's statement names
	portals      map[string]*preparedStmt // statement behind each portal
	unnamedParse []byte                   // the client's last Parse(""), resent when its server changes
	unnamedKey   uint64
	queue        []expectation // replies owed to the client, in order; from qhead
	qhead        int
	sskip        int      // server bytes of a passed-through message still to come
	evicted      []string // scratch for StmtCache.Add
	unnamedHit   stateHit // what the lexer saw in the client's unnamed statement

	// Session state (sessionstate.go), also guarded by mu.
	pinPolicy  string // pin, error or allow
	stateDirty bool   // this transaction may have changed session state
	loaded     bool   // the client ran LOAD: its server can never be reused
	checking   bool   // a state check holds the server
	// poolReleased is not guarded by mu: releasePool sets it, on the
	// goroutine that ends the connection (here for the padding).
	poolReleased bool
	pinReason    string        // why the client keeps its server ("" if it does not)
	checkDone    chan struct{} // closed when the check ends
	// customNames are custom settings ("app.x") the client may have set:
	// pg_settings does not list them, so the state check reads them by name.
	customNames map[string]struct{}

	// LISTEN fan-out (notify.go), also guarded by mu; listens (made at
	// login) is guarded by the pool's notifier's mu instead.
	listens       map[string]struct{} // channels the client listens on
	pendingListen []listenOp          // LISTEN/UNLISTEN waiting for COMMIT
	listenApply   []listenOp          // LISTEN/UNLISTEN to apply before answering
	notes         [][]byte            // notifications waiting for the transaction to end
	sawCommit     bool                // the last CommandComplete was COMMIT
	lastBackend   atomic.Uint32       // backend PID of the last server used
	attachSeq     atomic.Uint64       // when that server was attached

	// Parking (park.go).
	accepted     net.Conn     // the connection as accepted, for connDone
	parkState    atomic.Int32 // running, parkAsked or parked
	canPark      bool         // guarded by mu: a plain socket mux can poll itself
	inEpoll      bool         // owned by the session's goroutine: the socket is in the poller's set
	idleSeen     bool         // guarded by mu: a sweep saw the client without a server
	idleDeadline time.Time    // guarded by mu: the read deadline armIdleTimeout set

	wmu           sync.Mutex // serialises writes to conn
	writeDeadline int64      // guarded by wmu: the write deadline set last, in Unix nanoseconds

	// sink, when set, receives forwarded runs instead of a server: the
	// framing fuzz target drives the production read loop through it.
	sink func(data []byte, b session.Run) error

	// lc drives the client from an event loop (loopclient.go); nil for
	// the goroutine driver. Set before the relay starts.
	lc *loopClient
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
	c.raw = raw
	c.wmu.Unlock()
	if raw != nil {
		c.readFn = c.rawRead
	}
	c.mu.Lock()
	c.core.Attached()
	c.canPark = c.raw != nil && c.p.poller.enabled()
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
	if c.bp == nil {
		c.bp = wire.GetBuf(wire.SmallBufSize)
	}
	for {
		n, err := rawio.Read(fd, (*c.bp)[c.w:])
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			if c.w == 0 {
				wire.PutBuf(c.bp)
				c.bp = nil
			}
			return false
		}
		c.nread, c.rerr = n, err
		return true
	}
}

// compactInput makes room at the end of the input buffer for the next
// read.
func (c *clientConn) compactInput() {
	if c.bp == nil {
		return
	}
	buf := *c.bp
	if c.r == c.w {
		c.r, c.w = 0, 0
	} else if c.w == len(buf) && c.r > 0 {
		c.w = copy(buf, buf[c.r:c.w])
		c.r = 0
	}
}

// fill reads more client bytes into the input buffer.
func (c *clientConn) fill() error {
	c.compactInput()
	if c.raw != nil {
		c.nread, c.rerr = 0, nil
		if err := c.raw.Read(c.readFn); err != nil {
			return err
		}
		if c.nread > 0 {
			c.w += c.nread
			return nil
		}
		return c.rerr
	}
	if c.bp == nil {
		c.bp = wire.GetBuf(wire.SmallBufSize)
	}
	n, err := c.conn.Read((*c.bp)[c.w:])
	c.w += n
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
	pos := c.r
	fr0 := c.fr
	whole := &wholeNone
	if c.core.Mode != session.Session {
		whole = &wholeQuery
	}
	var run session.Run
	for {
		f, err := c.fr.Next((*c.bp)[pos:c.w], whole, c.maxMsg)
		if err != nil {
			if ferr := c.forward((*c.bp)[c.r:pos], run); ferr != nil {
				return ferr
			}
			return err
		}
		switch {
		case f.Kind == session.Short:
		case f.Kind == session.Partial:
			c.growFor(f.Len, &pos)
		case f.Kind != session.Rest && f.Type == 'X':
			if err := c.forward((*c.bp)[c.r:pos], run); err != nil {
				return err
			}
			c.r = c.w
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
	err := c.forward((*c.bp)[c.r:pos], run)
	if err == errWaitServer || err == errOffload {
		// Nothing was forwarded: processed again once a server is there.
		c.fr = fr0
		return err
	}
	c.consumed(pos)
	return err
}

// inspect looks into a whole Query or Parse of n bytes at pos for LISTEN,
// which transaction and statement mode refuse. done reports that it
// forwarded the run so far and the refusal in the message's place.
func (c *clientConn) inspect(pos, n int, run *session.Run) (done bool, err error) {
	m := (*c.bp)[pos : pos+n]
	// The byte filter first: lexOptions takes c.mu.
	if findWords(m[wire.HeaderLen:])&wordListen == 0 {
		return false, nil
	}
	repl := refuseListen(m, c.lexOptions())
	if repl == nil {
		return false, nil
	}
	if err := c.forward((*c.bp)[c.r:pos], *run); err != nil {
		return false, err
	}
	*run = session.Run{}
	c.r = pos
	var rr session.Run
	rr.Add(m[0])
	// Input is consumed only once forwarded: a loop-driven client that
	// must wait for a server runs this again.
	if err := c.forward(repl, rr); err != nil {
		return false, err
	}
	c.r = pos + n
	return true, nil
}

// consumed marks the input up to pos processed, and gives the buffer back
// once all of it is.
func (c *clientConn) consumed(pos int) {
	c.r = pos
	if c.r == c.w {
		c.r, c.w = 0, 0
		wire.PutBuf(c.bp)
		c.bp = nil
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
	buf := *c.bp
	if total <= len(buf)-c.r {
		return
	}
	nb := wire.GetBuf(total + (*pos - c.r))
	n := copy(*nb, buf[c.r:c.w])
	*pos -= c.r
	c.r, c.w = 0, n
	wire.PutBuf(c.bp)
	c.bp = nb
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
	if awaits && !c.idleDeadline.IsZero() {
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
	if c.listens != nil {
		if n := c.p.existingNotifier(poolKey{c.database, c.user}); n != nil {
			n.forget(c)
		}
	}
	if c.bp != nil {
		wire.PutBuf(c.bp)
		c.bp = nil
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
	pinned, loaded := c.pinReason != "", c.loaded
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
