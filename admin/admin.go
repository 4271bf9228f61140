// Package admin is mux's admin console: the virtual databases "pgbouncer"
// and "mux" answering PgBouncer's console commands over the simple query
// protocol.
//
// SHOW output (show.go) keeps PgBouncer's column names, order and types,
// so tools written for PgBouncer read it unchanged. The console reads and
// changes the running pooler only through a Target, which package proxy
// implements; it never sees proxy's clients or pools themselves.
package admin

import (
	"crypto/rand"
	"encoding/binary"
	"net"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/wire"
)

const (
	// PgBouncerVersion is the PgBouncer release whose console mux mimics:
	// every SHOW has the columns of Debian bookworm's PgBouncer 1.18.0.
	PgBouncerVersion = "1.18.0"

	// maxQueryLen bounds a command; longer Query messages are read and
	// refused. The longest real command is a few dozen bytes.
	maxQueryLen = 64 << 10

	// poll is how often waits in the console (PAUSE, WAIT_CLOSE, the
	// watch for mux stopping) look at state nothing signals: a server
	// handed back, a client terminated, mux shutting down.
	poll = 20 * time.Millisecond
)

// IsDatabase reports whether a client asking for database name wants the
// console. Both names are reserved: a [databases] entry with one of them
// is never reached.
func IsDatabase(name string) bool { return name == "pgbouncer" || name == "mux" }

// Role is what a console user may do.
type Role int

const (
	RoleNone  Role = iota
	RoleStats      // SHOW only
	RoleAdmin      // everything
)

// RoleOf looks user up in cfg's admin_users and stats_users.
func RoleOf(cfg *config.Config, user string) Role {
	switch {
	case slices.Contains(cfg.AdminUsers, user):
		return RoleAdmin
	case slices.Contains(cfg.StatsUsers, user):
		return RoleStats
	}
	return RoleNone
}

// Welcome returns what PgBouncer's console sends an authenticated user at
// login, up to ReadyForQuery, or refuses one who is neither in admin_users
// nor in stats_users of cfg, the login's.
func Welcome(cfg *config.Config, user string) ([]byte, error) {
	if RoleOf(cfg, user) == RoleNone {
		return nil, wire.Fatal(wire.CodeInvalidAuthorization, "not allowed to connect to the admin console")
	}
	out := wire.AppendMessage(nil, &pgproto3.AuthenticationOk{})
	for _, ps := range [...][2]string{
		{"server_version", PgBouncerVersion + "/bouncer"},
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
	return wire.AppendReadyForQuery(out, 'I'), nil
}

// Console is the console of one pooler: its open sessions and the samples
// behind SHOW STATS's averages. Its methods are safe for concurrent use.
type Console struct {
	t Target

	mu       sync.Mutex // guards sessions; never held across I/O
	sessions map[*session]struct{}

	stats sampler // SHOW STATS's averages
	// logged holds the samples behind log_stats' lines; only LogStats,
	// which the proxy calls from one goroutine, uses it.
	logged sampler
}

// New returns the console of t.
func New(t Target) *Console {
	return &Console{t: t, sessions: map[*session]struct{}{}}
}

// Peer is a console client's connection, handed over after Welcome.
type Peer struct {
	ID             uint64
	User, Database string
	AppName        string // from the startup packet
	TLS            bool
	Connected      time.Time
	// Conn is read by the session and closed to end it from elsewhere.
	Conn net.Conn
	// Write sends one reply, bounded by client_write_timeout.
	Write func([]byte) error
	// SendError sends an error, bounded in time, before a close.
	SendError func(*wire.Error)
	// Log carries the client's identity.
	Log *zap.Logger
}

// session is one client of the console.
type session struct {
	con     *Console
	peer    Peer
	lastReq atomic.Int64 // unix nanoseconds of the last command
	closing atomic.Bool  // mux is stopping: end waits and leave
}

// Sessions counts the open console sessions.
func (con *Console) Sessions() int {
	con.mu.Lock()
	defer con.mu.Unlock()
	return len(con.sessions)
}

// Serve runs a console session after Welcome, until the client leaves or
// mux stops. The caller closes the connection.
func (con *Console) Serve(peer Peer) {
	s := &session{con: con, peer: peer}
	s.lastReq.Store(time.Now().UnixNano())
	con.mu.Lock()
	con.sessions[s] = struct{}{}
	con.mu.Unlock()
	defer func() {
		con.mu.Lock()
		delete(con.sessions, s)
		con.mu.Unlock()
	}()
	stop := make(chan struct{})
	defer close(stop)
	go s.watchShutdown(stop)
	s.ended(s.loop())
}

// watchShutdown ends the session once Target says consoles should leave.
func (s *session) watchShutdown(stop <-chan struct{}) {
	t := time.NewTicker(5 * poll)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		if s.con.t.Stopping() {
			s.closing.Store(true)
			s.peer.SendError(wire.Fatal(wire.CodeAdminShutdown, "terminating connection due to administrator command"))
			_ = s.peer.Conn.Close()
			return
		}
	}
}
