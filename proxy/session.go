package proxy

import (
	"context"
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/muxpg/mux/admin"
	"github.com/muxpg/mux/auth"
	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/cancelkey"
	"github.com/muxpg/mux/internal/rawio"
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/login"
	"github.com/muxpg/mux/pool"
	"github.com/muxpg/mux/session"
)

// serveConn runs one accepted connection from its first byte to its close.
//
// Login runs on the accepting goroutine; the relay of a logged-in client
// runs on a fresh one, so the stack that login grew (SCRAM, TLS) is freed
// and an idle client keeps only a small one.
func (p *Proxy) serveConn(conn net.Conn) {
	p.nclients.Add(1)
	c := &clientConn{
		p:         p,
		conn:      conn,
		id:        p.nextID.Add(1),
		connected: time.Now(),
	}
	relaying := false
	defer func() {
		if !relaying {
			p.unregister(c) // registered at login, if a later step failed
			c.releasePool()
			c.conn.Close() // c.conn: TLS may have replaced conn
			p.connDone(conn)
		}
	}()

	// The whole login runs under one snapshot of the configuration, users,
	// hba rules and TLS, whatever a reload swaps in meanwhile.
	s := p.snapshot()
	if d := s.cfg.ClientLoginTimeout.D(); d > 0 {
		_ = conn.SetDeadline(time.Now().Add(d))
	}
	lg := login.NewConn(conn)
	lg.SCRAMIterations = s.cfg.SCRAMIterations
	lg.LDAP, lg.Log = s.ldap, p.log
	st, key, err := login.ReadStartup(lg, s.clientTLS)
	c.conn, c.tls = lg.Conn, lg.TLS // TLS may have replaced conn
	if err != nil {
		c.loginFailed(err)
		return
	}
	if key != nil {
		p.cancel(*key)
		return
	}
	if p.refusing.Load() {
		c.loginFailed(wire.Fatal(wire.CodeCannotConnectNow, "the database system is shutting down"))
		return
	}
	c.user, c.database = st.User, st.Database
	if loopRelayed(st) && rawio.RawConn(c.conn) != nil && s.cfg.ServerTLSSSLMode == "disable" {
		// The driver is chosen before login registers the client, so
		// that whoever finds it there (KILL, the sweeper) sees which.
		if l := p.pickLoop(); l != nil {
			c.lc = c.newLoopClient(l)
		}
	} else if loopRelayed(st) && p.loopsOn() {
		// A TLS client relays on a goroutine, but its servers' replies
		// come from loops, which write through its output queue.
		c.lc = c.newLoopClient(nil)
	}
	if err := c.login(s, st, lg); err != nil {
		c.loginFailed(err)
		return
	}
	_ = conn.SetDeadline(time.Time{})
	if admin.IsDatabase(c.database) {
		c.logLogin(s.cfg.LogConnections)
		c.serveAdmin(st)
		return
	}
	if isReplication(st) {
		relaying = true
		c.startReplication(conn, s.cfg.LogConnections, st.Replication)
		return
	}
	c.logLogin(s.cfg.LogConnections, zap.Stringer("pool_mode", c.core.Mode))
	relaying = true
	go c.serveRelay(conn)
}

// serveRelay runs a logged-in client's session.
func (c *clientConn) serveRelay(accepted net.Conn) {
	c.park.accepted = accepted
	c.startRelay()
	if c.loopDriven() {
		c.startLoop()
		return
	}
	c.run()
}

// run relays until the session ends, and then ends it; or until it is
// parked, and then returns at once (park.go).
func (c *clientConn) run() {
	err := c.relay()
	if errors.Is(err, errParked) {
		return
	}
	c.end(err)
}

// loginFailed reports a failed login to the client (if it is a protocol
// error mux can phrase) and logs it.
func (c *clientConn) loginFailed(err error) {
	var we *wire.Error
	if errors.As(err, &we) {
		c.sendError(we)
		c.p.obs.LoginFailed(we.Code)
		c.logger().Info("login failed", zap.String("sqlstate", we.Code), zap.String("reason", we.Message))
		return
	}
	var le *pool.LoginError
	if errors.As(err, &le) {
		c.sendError(le.Err)
		c.p.obs.LoginFailed(le.Err.Code)
		c.logger().Info("login failed: server refused", zap.String("sqlstate", le.Err.Code), zap.String("reason", le.Err.Message))
		return
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		c.sendError(wire.Fatal(wire.CodeProtocolViolation, "client_login_timeout: login not completed in time"))
		c.logger().Info("login timed out")
		return
	}
	c.logger().Info("login failed", zap.Error(err))
}

// login authenticates the client (lg: its connection to package login),
// finds its pool and sends the welcome: AuthenticationOk, ParameterStatus,
// BackendKeyData, ReadyForQuery. Every decision comes from s, the snapshot
// ReadStartup ran under.
func (c *clientConn) login(s *snapshot, st *startup, lg *login.Conn) error {
	if err := c.admitLogin(s, st, lg); err != nil {
		return err
	}
	db, ok := s.cfg.LookupDatabase(st.Database)
	u, err := c.authenticate(s, st, lg, db, ok)
	if err != nil {
		return err
	}
	if isReplication(st) {
		return c.replicationLogin(s, st, db, ok, u)
	}
	if admin.IsDatabase(st.Database) {
		return c.adminWelcome(s.cfg, st)
	}
	if !ok {
		return wire.Fatal(wire.CodeInvalidCatalogName, "database %s does not exist", quote(st.Database))
	}
	if err := c.p.admin.loginAllowed(st.Database); err != nil {
		return err
	}
	c.joinPool(s.cfg, st, db, u)
	return c.welcome(s.cfg, st)
}

// admitLogin refuses a client over max_client_conn (the console keeps a
// reserve) or on TLS it lacks, and negotiates the protocol version.
func (c *clientConn) admitLogin(s *snapshot, st *startup, lg *login.Conn) error {
	cfg := s.cfg
	if err := lg.CheckTLS(s.clientTLS, st.User); err != nil {
		return err
	}
	limit := int64(cfg.MaxClientConn)
	if admin.IsDatabase(st.Database) {
		// A flood of clients must not lock the operator out.
		limit += adminReservedConns
	}
	if cfg.MaxClientConn > 0 && c.p.nclients.Load() > limit {
		return wire.Fatal(wire.CodeTooManyConnections, "sorry, too many clients already (max_client_conn = %d)", cfg.MaxClientConn)
	}
	if nv := st.Negotiation(); nv != nil {
		return c.writeMsg(nv)
	}
	return nil
}

// authenticate finds the user (in the snapshot, or with auth_query) and
// runs the exchange auth_hba_file or auth_type asks for, before saying
// whether the database exists, as Postgres.
func (c *clientConn) authenticate(s *snapshot, st *startup, lg *login.Conn, db config.Database, known bool) (*login.User, error) {
	p, cfg := c.p, s.cfg
	u := s.users[st.User]
	if authUser := firstNonEmpty(db.AuthUser, cfg.AuthUser); u == nil && known && authUser != "" && !admin.IsDatabase(st.Database) {
		ctx, cancel := c.waitContext()
		found, err := p.lookupUser(ctx, s, db, authUser, st.User)
		cancel()
		if err != nil {
			c.logger().Warn("auth_query failed", zap.Error(err))
			return nil, wire.Fatal(wire.CodeConnectionFailure, "could not look up user %s with auth_query: %v", quote(st.User), err)
		}
		u = found
	}
	cb := lg.ChannelBinding(s.clientTLS)
	used, err := lg.HBAAuthenticate(s.hba, st, u, cb)
	if !used {
		err = lg.Authenticate(cfg.AuthType, st.User, u, cb)
	}
	if err != nil {
		p.failures.Note(lg.RemoteAddr())
		return nil, err
	}
	c.scramKey = lg.ScramKey
	return ldapUser(lg, st.User, u), nil
}

// joinPool sets the client's pool mode and prepared-statement tracking and
// takes its pool.
func (c *clientConn) joinPool(cfg *config.Config, st *startup, db config.Database, u *login.User) {
	c.core.Mode = session.ModeOf(cfg.PoolModeFor(db, st.User))
	c.pin.policy = db.PinPolicy
	if c.core.Mode != session.Session {
		// Session state and LISTEN are tracked whatever
		// max_prepared_statements says; 0 only leaves named statements
		// alone.
		c.track = true
		c.ln.listens = map[string]struct{}{}
	}
	c.lim = session.Limits{MaxMessage: int32(cfg.MaxMessageSize), NoSimpleQuery: cfg.DisablePQExec}
	var reg *session.Registry
	c.pool, reg, c.stats = c.p.poolFor(st.Database, db, st.User, u)
	switch {
	case c.track && cfg.MaxPreparedStatements > 0:
		c.trk = session.NewTracker(reg)
	case c.track:
		c.trk = session.NewPassTracker()
	}
	c.useLDAPPassword(db, u)
	if key := c.passThroughKey(db, u); key != nil {
		c.pool.SetClientKey(*key)
	}
}

// passThroughKey is the SCRAM ClientKey mux logs in to Postgres with for
// the client, or nil: when the client proved the key of the very secret
// Postgres holds for this role, and the database names no login of its
// own (pass-through).
func (c *clientConn) passThroughKey(db config.Database, u *login.User) *[32]byte {
	if c.scramKey != nil && u != nil && u.Secret.Kind == auth.SecretSCRAM && db.User == "" && db.Password == "" {
		return c.scramKey
	}
	return nil
}

// welcome checks the client's settings against the pool's template,
// registers its cancel key and sends what a server sends at login.
func (c *clientConn) welcome(cfg *config.Config, st *startup) error {
	ctx, cancel := c.waitContext()
	defer cancel()
	tmpl, sentAuthOK, err := c.loginTemplate(ctx)
	if err != nil {
		return c.poolError(err)
	}
	want, extra, err := clientParams(st, tmpl, cfg.IgnoresStartupParameter)
	if err != nil {
		return err
	}
	if cfg.ApplicationNameAddHost {
		addClientHost(&want, st, cfg.IgnoresStartupParameter, c.conn.LocalAddr(), c.conn.RemoteAddr())
	}
	c.want, c.extra = want, extra
	key, err := c.p.register(c, st.ProtocolMinor())
	if err != nil {
		return err
	}
	var out []byte
	if !sentAuthOK {
		out = wire.AppendMessage(out, &pgproto3.AuthenticationOk{})
	}
	for name, v := range tmpl.Params {
		if i := trackedIndex(name); i >= 0 {
			if w, ok := want.get(i); ok {
				v = w
			}
		}
		out = wire.AppendMessage(out, &pgproto3.ParameterStatus{Name: name, Value: v})
	}
	out = cancelkey.AppendBackendKeyData(out, key)
	out = wire.AppendReadyForQuery(out, 'I')
	return c.write(out)
}

// The login's types, as the session sees them.
type (
	startup = login.Startup
	setting = login.Setting
)

func quote(s string) string { return `"` + s + `"` }

// adminReservedConns are connections beyond max_client_conn kept for the
// admin console.
const adminReservedConns = 5

func firstNonEmpty(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// waitContext bounds a wait for a server by query_wait_timeout.
func (c *clientConn) waitContext() (context.Context, context.CancelFunc) {
	if d := c.queryWaitTimeout(); d > 0 {
		return context.WithTimeout(context.Background(), d)
	}
	return context.WithCancel(context.Background())
}

// poolError turns a failure to get a server into what the client is told.
func (c *clientConn) poolError(err error) error {
	var le *pool.LoginError
	var we *wire.Error
	switch {
	case errors.As(err, &le):
		e := *le.Err
		e.Severity = "FATAL"
		return &e
	case errors.As(err, &we):
		return we // from the admin console's gate
	case errors.Is(err, pool.ErrWaitTimeout):
		return &wire.Error{Severity: "FATAL", Code: wire.CodeProtocolViolation,
			Message: "query_wait_timeout: no server connection became free in time",
			Hint:    "raise pool_size or query_wait_timeout, or find what holds the servers"}
	case errors.Is(err, pool.ErrClosed):
		return wire.Fatal(wire.CodeAdminShutdown, "terminating connection due to administrator command")
	}
	return &wire.Error{Severity: "FATAL", Code: wire.CodeConnectionFailure,
		Message: "could not connect to the database server: " + err.Error()}
}

// writeMsg sends one pgproto3 message to the client.
func (c *clientConn) writeMsg(m interface{ Encode([]byte) ([]byte, error) }) error {
	return c.write(wire.AppendMessage(nil, m))
}

// write sends bytes to the client; writes from the client's goroutine and
// from its server's read goroutine are serialised.
func (c *clientConn) write(b []byte) error {
	c.wmu.Lock()
	_, err := c.writeLocked(b)
	c.wmu.Unlock()
	return err
}

// writeTimed is write for a logged-in client: bounded by
// client_write_timeout, so a client that does not read cannot hold the
// writer (and wmu) for ever.
func (c *clientConn) writeTimed(b []byte) error {
	c.wmu.Lock()
	c.armWriteDeadline()
	_, err := c.writeLocked(b)
	c.wmu.Unlock()
	return err
}

// writeLocked sends bytes to the client; c.wmu must be held. A plain socket
// is written with raw system calls (package rawio says why).
func (c *clientConn) writeLocked(b []byte) (int, error) {
	if c.lc != nil {
		// Replies a loop queued (clientout.go) go first.
		if err := c.writeQueued(); err != nil {
			return 0, err
		}
	}
	return c.writeRaw(b)
}

// writeRaw is writeLocked without the output queue.
func (c *clientConn) writeRaw(b []byte) (int, error) {
	if c.wr == nil && c.in.raw != nil {
		// Made on first use: a client that only idles never pays for it.
		c.wr = rawio.NewWriter(c.in.raw)
	}
	if c.wr != nil {
		return c.wr.Write(b)
	}
	return c.conn.Write(b)
}

// sendError sends e, bounded in time so a client that does not read cannot
// hold us.
func (c *clientConn) sendError(e *wire.Error) {
	if c.p.config().LogPoolerErrors {
		c.logger().Warn("pooler error", zap.String("severity", e.Severity), zap.String("sqlstate", e.Code), zap.String("message", e.Message))
	}
	_ = c.conn.SetWriteDeadline(time.Now().Add(time.Second))
	_ = c.write(wire.AppendError(nil, e))
}
