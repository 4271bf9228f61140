package pool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/muxpg/mux/internal/wire"
)

// maxInspectLen bounds the server messages mux reads whole to inspect them
// (ReadyForQuery, ParameterStatus, ErrorResponse). Longer ones are streamed
// to the client unread; Postgres never sends a 1 MiB ParameterStatus, and a
// FATAL error that long would be a protocol violation in all but name.
const maxInspectLen = 1 << 20

// maxServerMessageLen is PostgreSQL's PQ_LARGE_MESSAGE_LIMIT (MaxAllocSize-1):
// no server message is longer.
const maxServerMessageLen = 1<<30 - 1

// A Handler receives what a server sends while it is lent out. ServerData is
// called from the server's read goroutine; data is only valid during the
// call.
type Handler interface {
	ServerData(s *Server, data []byte, ev *Events)
}

// Events summarises one batch of server bytes handed to a Handler.
type Events struct {
	Ready  int  // ReadyForQuery messages in the batch
	Status byte // transaction status of the last ReadyForQuery
	Params bool // a ParameterStatus arrived
	Fatal  bool // a FATAL or PANIC ErrorResponse arrived: the server will close
	Other  bool // a message other than ParameterStatus, notice or notification
	// ErrCode is the SQLSTATE of the last ErrorResponse in the batch.
	ErrCode string
	Closed  error // the connection ended; data is empty
}

// Server is one connection from mux to PostgreSQL.
//
// The read goroutine owns reading from conn for the whole life of the
// Server, whether it is idle in the pool or lent to a client: asynchronous
// messages on idle servers are consumed there, and a FATAL closes it. Writes
// come from whoever holds the Server (a client session or the pool).
type Server struct {
	ID      uint64
	conn    net.Conn
	pool    *Pool
	log     *zap.Logger
	created time.Time
	network string
	address string

	// Key is the BackendKeyData Postgres issued; used only to forward cancels.
	KeyPID    uint32
	KeySecret []byte

	// Startup holds the ParameterStatus values Postgres reported at login.
	Startup map[string]string

	// Applied is owned by whoever holds the server: settings that mux SET on
	// this server which Postgres does not report (search_path, …).
	Applied map[string]string

	// Stmts and UnnamedKey are owned by whoever holds the server: the
	// prepared statements mux created on it, and which client Parse last
	// filled its unnamed statement (0: none, or unknown).
	Stmts      *StmtCache
	UnnamedKey uint64

	in     io.Reader     // reads conn: raw unless TLS (package rawio says why)
	out    io.Writer     // writes conn: raw unless TLS
	gen    uint64        // pool generation when connected (guarded by pool.mu)
	limits []*Limit      // the shared limits that count it (guarded by pool.mu)
	route  hostLink      // the host it went to, when the pool routes (hostconn.go)
	done   chan struct{} // closed when the read goroutine exits
	ev     Events        // reused for every batch by the reader
	rs     readState     // owned by the reader
	lp     loopState     // owned by the event loop that reads the server, if one does
	broken atomic.Bool

	mu      sync.Mutex // guards the fields below
	handler Handler
	params  map[string]string // current ParameterStatus values
	// The last LookupParams answer, valid until a parameter changes: a
	// client's attach asks for the same names every time.
	lookupNames []string
	lookupVals  []string
	lookupOK    bool
	lastUsed    time.Time // when it was last put back idle (pool)
	cancels     int       // cancel requests in flight for this server
	parked      bool      // released while cancels > 0: release when they finish
}

// Param returns the current value of a reported parameter.
func (s *Server) Param(name string) (string, bool) {
	s.mu.Lock()
	v, ok := s.params[name]
	s.mu.Unlock()
	return v, ok
}

// LookupParams sets values[i] to the reported value of names[i] ("" if
// none), under one lock. Asked again for the same names slice with no
// parameter changed since, it copies the last answer instead of looking
// each name up: the slice is recognised by its first element's address,
// so names must not be changed in place between calls.
func (s *Server) LookupParams(names, values []string) {
	s.mu.Lock()
	if !s.lookupOK || len(names) != len(s.lookupNames) || len(names) > 0 && &names[0] != &s.lookupNames[0] {
		s.lookupVals = s.lookupVals[:0]
		for _, n := range names {
			s.lookupVals = append(s.lookupVals, s.params[n])
		}
		s.lookupNames, s.lookupOK = names, true
	}
	copy(values, s.lookupVals)
	s.mu.Unlock()
}

// Params returns a copy of the reported parameters.
func (s *Server) Params() map[string]string {
	s.mu.Lock()
	m := make(map[string]string, len(s.params))
	for k, v := range s.params {
		m[k] = v
	}
	s.mu.Unlock()
	return m
}

// SetHandler directs what the server sends to h (nil: idle).
func (s *Server) SetHandler(h Handler) {
	s.mu.Lock()
	s.handler = h
	s.mu.Unlock()
}

// Write sends bytes to the server. A failed write marks the server broken.
func (s *Server) Write(b []byte) error {
	_, err := s.out.Write(b)
	if err != nil {
		s.MarkBroken()
	}
	return err
}

// MarkBroken records that the server's state is unknown: it will be closed
// instead of reused.
func (s *Server) MarkBroken() { s.broken.Store(true) }

// Broken reports whether the server must not be reused.
func (s *Server) Broken() bool { return s.broken.Load() }

// Addr returns the network and address the server was dialled on.
func (s *Server) Addr() (network, address string) { return s.network, s.address }

// Age returns how long ago the connection was made.
func (s *Server) Age() time.Duration { return time.Since(s.created) }

// Done is closed when the server's connection has ended.
func (s *Server) Done() <-chan struct{} { return s.done }

// close ends the connection; the read goroutine then exits.
func (s *Server) close() {
	s.route.closed()
	s.broken.Store(true)
	_ = s.conn.Close()
	if s.lp.loop != nil {
		s.lp.loop.PokeServer(s) // a closed socket leaves the set silently
	}
}

// BeginCancel records a cancel request in flight; the server is not reused
// until EndCancel.
func (s *Server) BeginCancel() {
	s.mu.Lock()
	s.cancels++
	s.mu.Unlock()
}

// EndCancel ends a cancel request; a server released meanwhile goes back to
// its pool now.
func (s *Server) EndCancel() {
	s.mu.Lock()
	s.cancels--
	release := s.cancels == 0 && s.parked
	if release {
		s.parked = false
	}
	s.mu.Unlock()
	if release {
		s.pool.Release(s)
	}
}

// park holds back a release while cancels are in flight. It reports whether
// the server was parked.
func (s *Server) park() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cancels > 0 {
		s.parked = true
		return true
	}
	return false
}

// readState is the server's input buffer, owned by whoever reads the
// socket (the read goroutine, or the event loop that polls it).
type readState struct {
	bp     *[]byte
	r, w   int // unprocessed input is (*bp)[r:w]
	stream int // bytes still to come of a message passed through in pieces
	// scratch is where the loop's raw read step puts its bytes.
	scratch []byte
}

// readSpace makes room for the next read and returns where it goes; nil
// (with the server failed) when an inspected message outgrew the buffer.
func (s *Server) readSpace() []byte {
	rs := &s.rs
	buf := *rs.bp
	if rs.r == rs.w {
		rs.r, rs.w = 0, 0
	} else if rs.w == len(buf) {
		if rs.r == 0 {
			// Only an inspected message that outgrew the buffer gets here;
			// received grows the buffer before asking for more.
			s.fail(errors.New("server read buffer full"))
			return nil
		}
		rs.w = copy(buf, buf[rs.r:rs.w])
		rs.r = 0
	}
	return buf[rs.w:]
}

func (s *Server) readLoop() {
	defer close(s.done)
	s.rs.bp = wire.GetBuf(wire.SmallBufSize)
	defer func() { wire.PutBuf(s.rs.bp) }()
	for {
		b := s.readSpace()
		if b == nil {
			return
		}
		n, err := s.in.Read(b)
		if n == 0 {
			if err == nil {
				continue
			}
			s.fail(err)
			return
		}
		if !s.received(n) {
			return
		}
		if s.broken.Load() && s.handlerIsNil() {
			s.close()
		}
	}
}

// received frames n new bytes of input, inspects the messages mux acts on
// and hands the whole messages to the handler. It reports false once the
// server has failed.
func (s *Server) received(n int) bool {
	rs := &s.rs
	buf := *rs.bp
	rs.w += n
	s.ev = Events{}
	ev := &s.ev
	pos := rs.r
	if rs.stream > 0 {
		adv := min(rs.stream, rs.w-pos)
		pos += adv
		rs.stream -= adv
	}
	for rs.stream == 0 && rs.w-pos >= wire.HeaderLen {
		typ, l := wire.Header(buf[pos:])
		if l < 4 || l > maxServerMessageLen {
			s.fail(errors.New("invalid message length from server"))
			return false
		}
		total := 1 + l
		inspect := (typ == 'Z' || typ == 'S' || typ == 'E') && total <= maxInspectLen
		if !inspect {
			switch typ {
			case 'N', 'A', 'E':
			default:
				ev.Other = true
			}
			if rs.w-pos < total {
				rs.stream = total - (rs.w - pos)
				pos = rs.w
				break
			}
			pos += total
			continue
		}
		if rs.w-pos < total {
			if total > len(buf) {
				nb := wire.GetBuf(total)
				rs.w = copy(*nb, buf[rs.r:rs.w])
				pos -= rs.r
				rs.r = 0
				wire.PutBuf(rs.bp)
				rs.bp, buf = nb, *nb
			}
			break
		}
		body := buf[pos+wire.HeaderLen : pos+total]
		switch typ {
		case 'Z':
			ev.Ready++
			if len(body) > 0 {
				ev.Status = body[0]
			}
			ev.Other = true
		case 'S':
			s.setParam(body)
			ev.Params = true
		case 'E':
			sev, code := wire.ErrorSeverityAndCode(body)
			if wire.IsFatalSeverity(sev) {
				ev.Fatal = true
			}
			ev.ErrCode = string(code)
		}
		pos += total
	}
	if pos > rs.r {
		data := buf[rs.r:pos]
		rs.r = pos
		s.dispatch(data, ev)
	}
	return true
}

func (s *Server) handlerIsNil() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handler == nil
}

func (s *Server) dispatch(data []byte, ev *Events) {
	s.mu.Lock()
	h := s.handler
	s.mu.Unlock()
	if ev.Fatal {
		s.broken.Store(true)
	}
	if h != nil {
		h.ServerData(s, data, ev)
		return
	}
	// Idle in the pool: only asynchronous messages are expected.
	if ev.Fatal || ev.Other {
		if ce := s.log.Check(zap.DebugLevel, "idle server sent a message"); ce != nil {
			ce.Write(zap.Bool("fatal", ev.Fatal), zap.Uint8("type", data[0]))
		}
		s.broken.Store(true)
		s.pool.removeIdle(s)
	}
}

func (s *Server) setParam(body []byte) {
	i := bytes.IndexByte(body, 0)
	if i < 0 {
		return
	}
	name := string(body[:i])
	rest := body[i+1:]
	if j := bytes.IndexByte(rest, 0); j >= 0 {
		rest = rest[:j]
	}
	val := string(rest)
	s.mu.Lock()
	if s.params[name] != val {
		s.params[name] = val
		s.lookupOK = false
	}
	s.mu.Unlock()
}

func (s *Server) fail(err error) {
	s.broken.Store(true)
	_ = s.conn.Close()
	s.mu.Lock()
	h := s.handler
	s.mu.Unlock()
	if h != nil {
		h.ServerData(s, nil, &Events{Closed: err})
	} else if s.pool != nil { // a host check's server has none
		s.pool.removeIdle(s)
	}
}

// Result is what an internal query returned.
type Result struct {
	Rows   [][]string // text values of every DataRow (NULL as "")
	Tags   []string   // CommandComplete tags
	Err    *wire.Error
	Status byte // transaction status after the query
}

// execSink collects the reply to an internal query.
type execSink struct {
	buf      []byte
	res      Result
	done     chan struct{}
	finished bool // only touched by the read goroutine
	err      error
}

func (e *execSink) ServerData(s *Server, data []byte, ev *Events) {
	if e.finished {
		return
	}
	if ev.Closed != nil {
		e.err = ev.Closed
		e.finished = true
		close(e.done)
		return
	}
	e.buf = append(e.buf, data...)
	for len(e.buf) >= wire.HeaderLen {
		typ, l := wire.Header(e.buf)
		if len(e.buf) < 1+l {
			return
		}
		body := e.buf[wire.HeaderLen : 1+l]
		switch typ {
		case 'D':
			e.res.Rows = append(e.res.Rows, decodeDataRow(body))
		case 'C':
			e.res.Tags = append(e.res.Tags, string(bytes.TrimRight(body, "\x00")))
		case 'E':
			if e.res.Err == nil {
				e.res.Err = decodeError(body)
			}
		case 'Z':
			if len(body) > 0 {
				e.res.Status = body[0]
			}
			e.buf = e.buf[1+l:]
			e.finished = true
			close(e.done)
			return
		}
		e.buf = e.buf[1+l:]
	}
}

func decodeDataRow(body []byte) []string {
	if len(body) < 2 {
		return nil
	}
	n := int(body[0])<<8 | int(body[1])
	body = body[2:]
	row := make([]string, 0, n)
	for i := 0; i < n && len(body) >= 4; i++ {
		l := int(int32(uint32(body[0])<<24 | uint32(body[1])<<16 | uint32(body[2])<<8 | uint32(body[3])))
		body = body[4:]
		if l < 0 || l > len(body) {
			row = append(row, "")
			continue
		}
		row = append(row, string(body[:l]))
		body = body[l:]
	}
	return row
}

// ErrExecTimeout is returned when an internal query does not finish in time;
// the server is closed.
var ErrExecTimeout = errors.New("internal query timed out")

// Exec runs sql (simple protocol) on a server the caller holds and returns
// its result. The server's replies go to the query, not to any client; the
// handler is nil afterwards. On a timeout or connection error the server is
// marked broken.
func (s *Server) Exec(ctx context.Context, sql string) (*Result, error) {
	if s.broken.Load() {
		return nil, errors.New("server connection is broken")
	}
	// A simple query replaces the unnamed statement.
	s.UnnamedKey = 0
	sink := &execSink{done: make(chan struct{})}
	s.SetHandler(sink)
	defer s.SetHandler(nil)
	if err := s.Write(wire.AppendQuery(nil, sql)); err != nil {
		return nil, err
	}
	select {
	case <-sink.done:
	case <-ctx.Done():
		s.close()
		<-s.done
		return nil, ErrExecTimeout
	}
	if sink.err != nil {
		return nil, sink.err
	}
	return &sink.res, nil
}

// ErrNotIdle is returned by ExecIdle when the server did not come back to
// an idle state (it is then marked broken).
var ErrNotIdle = errors.New("server not idle after internal query")

// ExecIdle is Exec for queries that must leave the server clean: it
// returns an error unless the query succeeded and the server is idle
// (ReadyForQuery 'I'). The server's own ErrorResponse comes back as a
// *wire.Error; a lost connection or a server left in a transaction also
// marks the server broken.
func (s *Server) ExecIdle(ctx context.Context, sql string) (*Result, error) {
	res, err := s.Exec(ctx, sql)
	switch {
	case err != nil:
		s.MarkBroken()
		return nil, err
	case res.Status != 'I':
		s.MarkBroken()
		if res.Err != nil {
			return res, res.Err
		}
		return res, ErrNotIdle
	case res.Err != nil:
		return res, res.Err
	}
	return res, nil
}
