package proxy

// The admin console: the virtual databases "pgbouncer" and "mux" answer
// PgBouncer's console commands over the simple query protocol. SHOW output
// (admin_show.go) keeps PgBouncer's column names, order and types, so tools
// written for PgBouncer read it unchanged.

import (
	"bufio"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
)

const (
	// pgbouncerVersion is the PgBouncer release whose console mux mimics:
	// every SHOW has the columns of Debian bookworm's PgBouncer 1.18.0.
	pgbouncerVersion = "1.18.0"

	// maxAdminQueryLen bounds an admin command; longer Query messages are
	// read and refused. The longest real command is a few dozen bytes.
	maxAdminQueryLen = 64 << 10

	// adminPoll is how often waits in the console (PAUSE, WAIT_CLOSE, a
	// client held at a paused database) look at state nothing signals: a
	// server handed back, a client terminated, mux shutting down.
	adminPoll = 20 * time.Millisecond
)

// SQLSTATEs only the console uses.
const (
	codeInsufficientPrivilege = "42501"
	codeNotInPrerequisite     = "55000"
	codeConfigFileError       = "F0000"
)

// isAdminDatabase reports whether a client asking for database name wants
// the admin console. Both names are reserved: a [databases] entry with one
// of them is never reached.
func isAdminDatabase(name string) bool { return name == "pgbouncer" || name == "mux" }

// adminState is what the console changes in a running proxy, and its own
// sessions. The zero value is ready; mu guards everything but the atomics.
type adminState struct {
	mu        sync.Mutex
	pauseAll  bool            // PAUSE without a database
	paused    map[string]bool // PAUSE db (and KILL db), by the name clients ask for
	disabled  map[string]bool // DISABLE db
	admitting map[string]int  // clients let through while something is paused, not yet holding a server
	resumed   chan struct{}   // closed when a pause is lifted; nil until someone waits
	sessions  map[*clientConn]*adminSession

	// npaused is pauseAll plus len(paused): while 0, clients pass the gate
	// without taking mu. passing counts clients that did so and do not hold
	// their server yet; PAUSE waits for it to drain.
	npaused atomic.Int32
	passing atomic.Int64

	statsMu   sync.Mutex
	statsPrev *statsSample // the two latest samples, at least statsPeriod apart
	statsLast *statsSample
}

// adminSession is one client of the console.
type adminSession struct {
	c       *clientConn
	appName string
	lastReq atomic.Int64 // unix nanoseconds of the last command
	closing atomic.Bool  // mux is stopping: end waits and leave
}

// adminRole is what a console user may do.
type adminRole int

const (
	roleNone  adminRole = iota
	roleStats           // SHOW only
	roleAdmin           // everything
)

// adminRoleOf looks the user up in the configuration in force, so a RELOAD
// that changes admin_users or stats_users applies to open sessions too.
func (p *Proxy) adminRoleOf(user string) adminRole { return adminRoleIn(p.config(), user) }

// adminRoleIn looks the user up in cfg's admin_users and stats_users.
func adminRoleIn(cfg *config.Config, user string) adminRole {
	switch {
	case slices.Contains(cfg.AdminUsers, user):
		return roleAdmin
	case slices.Contains(cfg.StatsUsers, user):
		return roleStats
	}
	return roleNone
}

// adminHooks returns the RELOAD and SHUTDOWN hooks. They are read under
// admin.mu so that tests may set them on a serving proxy.
func (p *Proxy) adminHooks() (reload func() error, shutdown func()) {
	p.admin.mu.Lock()
	defer p.admin.mu.Unlock()
	return p.OnReload, p.OnShutdown
}

// adminWelcome admits an authenticated user to the console, or refuses
// one who is neither in admin_users nor in stats_users of cfg, the
// login's. It sends what PgBouncer's console sends at login.
func (c *clientConn) adminWelcome(cfg *config.Config, st *startup) error {
	if adminRoleIn(cfg, st.User) == roleNone {
		return wire.Fatal(wire.CodeInvalidAuthorization, "not allowed to connect to the admin console")
	}
	out := wire.AppendMessage(nil, &pgproto3.AuthenticationOk{})
	for _, ps := range [...][2]string{
		{"server_version", pgbouncerVersion + "/bouncer"},
		{"client_encoding", "UTF8"},
		{"server_encoding", "UTF8"},
		{"DateStyle", "ISO"},
		{"TimeZone", "GMT"},
		{"standard_conforming_strings", "on"},
		{"is_superuser", "on"},
	} {
		out = wire.AppendMessage(out, &pgproto3.ParameterStatus{Name: ps[0], Value: ps[1]})
	}
	// The key is never registered: a cancel for a console session is
	// dropped, as there is no query on a server to cancel.
	var key [8]byte
	_, _ = rand.Read(key[:])
	pid := binary.BigEndian.Uint32(key[:4]) & 0x7fffffff
	out = wire.AppendMessage(out, &pgproto3.BackendKeyData{ProcessID: pid, SecretKey: key[4:]})
	out = wire.AppendReadyForQuery(out, 'I')
	if err := c.write(out); err != nil {
		return err
	}
	s := &adminSession{c: c}
	for _, set := range st.Settings {
		if set.Name == "application_name" {
			s.appName = set.Value
		}
	}
	s.lastReq.Store(time.Now().UnixNano())
	a := &c.p.admin
	a.mu.Lock()
	if a.sessions == nil {
		a.sessions = map[*clientConn]*adminSession{}
	}
	a.sessions[c] = s
	a.mu.Unlock()
	return nil
}

// serveAdmin runs a console session after adminWelcome.
func (c *clientConn) serveAdmin() {
	a := &c.p.admin
	a.mu.Lock()
	s := a.sessions[c]
	a.mu.Unlock()
	defer func() {
		a.mu.Lock()
		delete(a.sessions, c)
		a.mu.Unlock()
	}()
	stop := make(chan struct{})
	defer close(stop)
	go s.watchShutdown(stop)
	err := s.loop()
	var we *wire.Error
	switch {
	case err == nil, errors.Is(err, errTerminate), errors.Is(err, errAdminLeave),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
	case errors.As(err, &we):
		c.sendError(we)
		c.logger().Info("closing admin console client", zap.String("sqlstate", we.Code), zap.String("reason", we.Message))
	default:
		if ce := c.logger().Check(zap.DebugLevel, "admin console connection ended"); ce != nil {
			ce.Write(zap.Error(err))
		}
	}
}

// watchShutdown ends the session once mux drains and no regular client is
// left (so the drain does not wait for consoles), or once the listeners
// are closed.
func (s *adminSession) watchShutdown(stop <-chan struct{}) {
	p := s.c.p
	t := time.NewTicker(5 * adminPoll)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if p.closing.Load() || p.draining.Load() && p.loggedIn() == 0 {
			s.closing.Store(true)
			s.c.sendError(wire.Fatal(wire.CodeAdminShutdown, "terminating connection due to administrator command"))
			_ = s.c.conn.Close()
			return
		}
	}
}

// loop reads the client's messages and answers them until it leaves.
// Extended-protocol messages are refused with one error, and skipped up to
// the next Sync as Postgres does after an error.
func (s *adminSession) loop() error {
	c := s.c
	r := bufio.NewReaderSize(c.conn, 4096)
	var hdr [wire.HeaderLen]byte
	skipping := false
	maxLen := int(c.p.config().MaxMessageSize)
	for {
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return err
		}
		typ, l := wire.Header(hdr[:])
		if l < 4 || l > maxLen {
			return wire.Fatal(wire.CodeProtocolViolation, "invalid message length %d for message type %q", l, typ)
		}
		n := l - 4
		var body []byte
		if typ == 'Q' && n <= maxAdminQueryLen {
			body = make([]byte, n)
			if _, err := io.ReadFull(r, body); err != nil {
				return err
			}
		} else if _, err := io.CopyN(io.Discard, r, int64(n)); err != nil {
			return err
		}
		var out []byte
		switch typ {
		case 'Q':
			if skipping {
				continue
			}
			s.lastReq.Store(time.Now().UnixNano())
			if body == nil {
				out = wire.AppendError(out, wire.Errorf(wire.CodeProgramLimitExceeded, "admin command too long (%d bytes)", n))
				break
			}
			res, err := s.run(strings.TrimRight(string(body), "\x00"))
			if err != nil {
				return err
			}
			out = res
		case 'X':
			return errTerminate
		case 'P', 'B', 'D', 'E', 'C', 'H':
			if skipping {
				continue
			}
			skipping = true
			out = wire.AppendError(out, wire.Errorf(wire.CodeProtocolViolation, "admin console supports only simple query protocol"))
			if err := c.writeTimed(out); err != nil {
				return err
			}
			continue
		case 'S':
			skipping = false
		case 'F':
			if skipping {
				continue
			}
			out = wire.AppendError(out, wire.Errorf(wire.CodeProtocolViolation, "admin console supports only simple query protocol"))
		case 'd', 'c', 'f':
			continue // copy messages outside COPY are ignored, as by Postgres
		default:
			return wire.Fatal(wire.CodeProtocolViolation, "invalid frontend message type %d", typ)
		}
		out = wire.AppendReadyForQuery(out, 'I')
		if err := c.writeTimed(out); err != nil {
			return err
		}
	}
}

// errAdminLeave ends a session without a reply (SHUTDOWN, as PgBouncer).
var errAdminLeave = errors.New("admin session ends")

// run executes one command and returns its reply, up to ReadyForQuery. A
// non-nil error ends the session.
func (s *adminSession) run(q string) ([]byte, error) {
	cmd, ok := parseAdminCommand(q)
	if !ok {
		return wire.AppendError(nil, invalidCommand(q)), nil
	}
	role := s.c.p.adminRoleOf(s.c.user)
	if role == roleNone || role == roleStats && cmd.verb != "SHOW" {
		return wire.AppendError(nil, wire.Errorf(codeInsufficientPrivilege, "admin access needed")), nil
	}
	if cmd.verb == "SHOW" {
		if ce := s.c.logger().Check(zap.DebugLevel, "admin command"); ce != nil {
			ce.Write(zap.String("command", "SHOW "+cmd.arg))
		}
		out, err := s.show(cmd.arg)
		if err != nil {
			return wire.AppendError(nil, err), nil
		}
		if out == nil {
			return wire.AppendError(nil, invalidCommand(q)), nil
		}
		return out, nil
	}
	s.c.logger().Info("admin command", zap.String("command", cmd.verb), zap.String("arg", cmd.arg))
	tag, err := s.command(cmd)
	switch {
	case errors.Is(err, errAdminLeave):
		return nil, err
	case err != nil:
		var we *wire.Error
		if errors.As(err, &we) {
			return wire.AppendError(nil, we), nil
		}
		return nil, err
	case tag == "":
		return wire.AppendError(nil, invalidCommand(q)), nil
	}
	return wire.AppendMessage(nil, &pgproto3.CommandComplete{CommandTag: []byte(tag)}), nil
}

func invalidCommand(q string) *wire.Error {
	return wire.Errorf(wire.CodeProtocolViolation, "invalid command '%s', use SHOW HELP;", q)
}

// adminCmd is a parsed console command.
type adminCmd struct {
	verb   string // upper case
	arg    string // SHOW's subject (upper case) or a database name
	hasArg bool
}

// parseAdminCommand splits "VERB [arg][;]": verbs and SHOW subjects are
// case-insensitive, a database name is taken as written or double-quoted.
func parseAdminCommand(q string) (adminCmd, bool) {
	q = strings.TrimSpace(q)
	q = strings.TrimSpace(strings.TrimSuffix(q, ";"))
	words, ok := splitWords(q)
	if !ok || len(words) == 0 {
		return adminCmd{}, false
	}
	cmd := adminCmd{verb: strings.ToUpper(words[0])}
	if cmd.verb == "SET" {
		return cmd, true // refused whatever follows
	}
	if len(words) > 2 {
		return adminCmd{}, false
	}
	if len(words) == 2 {
		cmd.arg, cmd.hasArg = words[1], true
	}
	switch cmd.verb {
	case "SHOW":
		if !cmd.hasArg {
			return adminCmd{}, false
		}
		cmd.arg = strings.ToUpper(cmd.arg)
	case "PAUSE", "RESUME", "RECONNECT", "WAIT_CLOSE", "KILL", "DISABLE", "ENABLE":
	case "RELOAD", "SHUTDOWN", "SUSPEND":
		if cmd.hasArg {
			return adminCmd{}, false
		}
	default:
		return adminCmd{}, false
	}
	return cmd, true
}

// splitWords splits on white space; a word may be double-quoted, with ""
// standing for a quote inside it.
func splitWords(s string) ([]string, bool) {
	var words []string
	for {
		s = strings.TrimLeft(s, " \t\r\n")
		if s == "" {
			return words, true
		}
		if s[0] != '"' {
			i := strings.IndexAny(s, " \t\r\n")
			if i < 0 {
				i = len(s)
			}
			words = append(words, s[:i])
			s = s[i:]
			continue
		}
		var b strings.Builder
		i := 1
		for {
			j := strings.IndexByte(s[i:], '"')
			if j < 0 {
				return nil, false
			}
			b.WriteString(s[i : i+j])
			i += j + 1
			if i < len(s) && s[i] == '"' {
				b.WriteByte('"')
				i++
				continue
			}
			break
		}
		if i < len(s) && !strings.ContainsRune(" \t\r\n", rune(s[i])) {
			return nil, false
		}
		words = append(words, b.String())
		s = s[i:]
	}
}

// command runs an admin-only command and returns its CommandComplete tag
// ("" for an unknown command).
func (s *adminSession) command(cmd adminCmd) (string, error) {
	p := s.c.p
	db := cmd.arg
	if cmd.hasArg {
		if isAdminDatabase(db) {
			return "", wire.Errorf(wire.CodeFeatureNotSupported, "cannot %s admin db: %s", strings.ToLower(cmd.verb), db)
		}
		if !p.knownDatabase(db) {
			return "", wire.Errorf(wire.CodeInvalidCatalogName, "no such database: %s", db)
		}
	}
	switch cmd.verb {
	case "KILL", "DISABLE", "ENABLE":
		if !cmd.hasArg {
			return "", wire.Errorf(wire.CodeProtocolViolation, "a database is required")
		}
	}
	switch cmd.verb {
	case "PAUSE":
		return cmd.verb, s.pause(db)
	case "RESUME":
		return cmd.verb, p.admin.resume(db)
	case "DISABLE", "ENABLE":
		p.admin.setDisabled(db, cmd.verb == "DISABLE")
		return cmd.verb, nil
	case "KILL":
		p.kill(db)
		return cmd.verb, nil
	case "RECONNECT":
		for _, pl := range p.poolsOf(db) {
			pl.Reconnect()
		}
		return cmd.verb, nil
	case "WAIT_CLOSE":
		return cmd.verb, s.waitClose(db)
	case "RELOAD":
		reload, _ := p.adminHooks()
		if reload == nil {
			return "", wire.Errorf(wire.CodeFeatureNotSupported, "RELOAD is not available: this mux was not started from a configuration file")
		}
		if err := reload(); err != nil {
			return "", wire.Errorf(codeConfigFileError, "reload failed, the running configuration is kept: %v", err)
		}
		return cmd.verb, nil
	case "SHUTDOWN":
		_, shutdown := p.adminHooks()
		if shutdown == nil {
			return "", wire.Errorf(wire.CodeFeatureNotSupported, "SHUTDOWN is not available in this process")
		}
		p.log.Info("shutdown requested from the admin console", zap.String("user", s.c.user))
		shutdown()
		return "", errAdminLeave
	case "SUSPEND", "SET":
		return "", wire.Errorf(wire.CodeFeatureNotSupported, "%s is not supported by mux: change the configuration file and RELOAD", cmd.verb)
	}
	return "", nil
}

// knownDatabase reports whether name is a [databases] entry, has a pool
// (a database reached through "*"), or is paused or disabled by name.
func (p *Proxy) knownDatabase(name string) bool {
	if _, ok := p.config().Databases[name]; ok && name != "*" {
		return true
	}
	if p.admin.heldByName(name) {
		return true
	}
	return len(p.poolsOf(name)) > 0
}

// poolsOf returns the pools of database db, or every pool if db is "".
func (p *Proxy) poolsOf(db string) []*pool.Pool {
	p.poolMu.Lock()
	defer p.poolMu.Unlock()
	var out []*pool.Pool
	for key, pl := range p.pools {
		if db == "" || key.database == db {
			out = append(out, pl)
		}
	}
	return out
}

// pause stops handing out servers for db (all if ""), waits until every
// server of it is back in its pool, and closes them. Clients then wait
// until RESUME.
func (s *adminSession) pause(db string) error {
	p := s.c.p
	p.admin.setPaused(db)
	for !p.pauseComplete(db) {
		if s.closing.Load() {
			return wire.Fatal(wire.CodeAdminShutdown, "terminating connection due to administrator command")
		}
		time.Sleep(adminPoll)
	}
	for _, pl := range p.poolsOf(db) {
		pl.Reconnect()
	}
	return nil
}

// pauseComplete reports whether no client is on its way to a server of db
// and every server of db is idle.
func (p *Proxy) pauseComplete(db string) bool {
	if p.admin.passing.Load() > 0 || p.admin.admittingTo(db) > 0 {
		return false
	}
	for _, pl := range p.poolsOf(db) {
		if st := pl.Stats(); st.Total > st.Idle {
			return false
		}
	}
	return true
}

// waitClose waits until no server of db (all if "") is waiting to be
// closed after RECONNECT (or a reload that moved the database).
func (s *adminSession) waitClose(db string) error {
	p := s.c.p
	for {
		pending := false
		for _, pl := range p.poolsOf(db) {
			for _, si := range pl.Servers() {
				pending = pending || si.CloseNeeded
			}
		}
		if !pending {
			return nil
		}
		if s.closing.Load() {
			return wire.Fatal(wire.CodeAdminShutdown, "terminating connection due to administrator command")
		}
		time.Sleep(adminPoll)
	}
}

// kill disconnects every client of db now and closes its servers as they
// come back; like PgBouncer, the database stays paused until RESUME.
func (p *Proxy) kill(db string) {
	p.admin.setPaused(db)
	for _, pl := range p.poolsOf(db) {
		pl.Reconnect()
	}
	p.keysMu.Lock()
	var victims []*clientConn
	for _, c := range p.keys {
		if c.database == db {
			victims = append(victims, c)
		}
	}
	p.keysMu.Unlock()
	for _, c := range victims {
		c.sendError(&wire.Error{Severity: "FATAL", Code: wire.CodeAdminShutdown,
			Message: "terminating connection due to administrator command",
			Detail:  "KILL " + db + " in the admin console"})
		c.terminate()
	}
}
