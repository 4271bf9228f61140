package admin

import (
	"errors"
	"net"
	"time"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/pool"
)

// Target is the running pooler as the console sees it: snapshots to show
// and the actions its commands take. Package proxy implements it. Every
// method is safe for concurrent use and returns without waiting for
// clients or servers; the console itself polls where a command waits.
type Target interface {
	// Config returns the configuration in force.
	Config() *config.Config
	// Version is the mux release SHOW VERSION names ("" if unknown).
	Version() string
	// Pools returns every pool, sorted by database and user.
	Pools() []Pool
	// Clients returns every logged-in regular client (not the console's).
	Clients() []Client
	// Hosts returns the hosts of routed entries, by entry (SHOW HOSTS).
	Hosts() []Host
	// FDs lists the sockets in use: listeners, clients, servers (SHOW FDS).
	FDs() []FD
	// Lists and Mem count what SHOW LISTS and SHOW MEM report.
	Lists() Lists
	Mem() Mem
	// Held reports whether db is paused (PAUSE, KILL) and disabled; for
	// db "", whether everything is paused.
	Held(db string) (paused, disabled bool)
	// KnownDatabase reports whether db is a [databases] entry, has a
	// pool, or is paused or disabled by name.
	KnownDatabase(db string) bool

	// Pause stops handing out servers of db (all if ""); clients wait.
	Pause(db string)
	// PauseComplete reports whether, since Pause, no client is on its
	// way to a server of db and every server of db is idle.
	PauseComplete(db string) bool
	// Resume lifts the pause of db (all if ""); an error if none.
	Resume(db string) error
	// SetDisabled refuses (or again admits) logins to db.
	SetDisabled(db string, on bool)
	// Kill pauses db (all if ""), disconnects its clients (never the
	// consoles) and closes its servers.
	Kill(db string)
	// KillClient disconnects the regular client id (SHOW CLIENTS' ptr)
	// with FATAL 57P01; ErrNoClient if there is none.
	KillClient(id uint64) error
	// Reconnect closes the servers of db (all if ""): idle ones now,
	// lent ones when they come back.
	Reconnect(db string)
	// CloseNeeded reports whether a server of db (all if "") waits to
	// be closed after Reconnect.
	CloseNeeded(db string) bool
	// Reload rereads the configuration files; Shutdown starts stopping
	// mux in mode, as user asked. Either returns ErrNotAvailable if this
	// process cannot.
	Reload() error
	Shutdown(user string, mode ShutdownMode) error
	// Set changes one reloadable setting (SET name = value) as a reload
	// would; ErrUnknownSetting for one it cannot change.
	Set(name, value string) error
	// Stopping reports that consoles should leave: the listeners are
	// closed, or mux drains and no regular client is left.
	Stopping() bool
}

// ErrNotAvailable is Target's answer to a RELOAD or SHUTDOWN it cannot run.
var ErrNotAvailable = errors.New("not available in this process")

// ErrUnknownSetting is Set's answer for a setting SET cannot change.
var ErrUnknownSetting = errors.New("unknown or not changeable setting")

// ErrNoClient is KillClient's answer for an id no client has.
var ErrNoClient = errors.New("no such client")

// ShutdownMode is how SHUTDOWN stops mux; either way new logins are
// refused and the rest are ended at shutdown_timeout.
type ShutdownMode uint8

const (
	// ShutdownWaitForClients (plain SHUTDOWN, SHUTDOWN WAIT_FOR_CLIENTS,
	// like SIGTERM) lets every client stay until it leaves.
	ShutdownWaitForClients ShutdownMode = iota
	// ShutdownWaitForServers (SHUTDOWN WAIT_FOR_SERVERS, like SIGINT)
	// closes each transaction- and statement-mode client with 57P01 as
	// soon as it holds no server.
	ShutdownWaitForServers
)

// Pool is one pool: clients of a (database, user) and their servers.
type Pool struct {
	Database, User string // as clients ask for them
	PoolMode       string
	Target         pool.Target // where its servers go (Password empty)
	ClientsActive  int         // clients holding a server
	ClientsWaiting int         // clients waiting for one
	ClientsIdle    int         // logged-in clients holding none
	Servers        []pool.ServerInfo
	Total          int // servers, those being connected included
	MaxWait        time.Duration
	Stats          Stats
}

// Stats are a pool's totals since it was made, in PgBouncer's terms.
type Stats struct {
	Transactions, Queries int64
	BytesReceived         int64 // from clients
	BytesSent             int64 // to clients
	TransactionTime       time.Duration
	QueryTime             time.Duration
	WaitTime              time.Duration
	Waits                 int64
	Errors                int64 // ErrorResponses relayed to clients
}

// Client is one logged-in regular client.
type Client struct {
	ID              uint64
	User, Database  string
	Waiting         bool   // for a server (else active: PgBouncer counts idle clients as active)
	ServerID        uint64 // the server it holds, 0 if none
	Remote, Local   net.Addr
	ConnectTime     time.Time
	RequestTime     time.Time // last message from the client
	ApplicationName string
	TLS             bool
	PinReason       string // why it keeps its server between transactions
}

// FD is one socket of SHOW FDS.
type FD struct {
	FD                         int
	Task                       string // "pooler" (a listener), "client" or "server"
	User, Database             string
	Addr                       net.Addr // the peer (a listener's own address)
	Cancel                     uint64   // the cancel key mux issued (clients), or the server's
	Link                       int      // the fd of the client's server, or the server's client; -1: none
	ClientEncoding, StdStrings string
	DateStyle, TimeZone        string
}

// Lists are the counts of SHOW LISTS.
type Lists struct {
	Pools, Servers int
	LoggedIn       int // regular clients past login
	Connections    int // client connections being served: logging in, logged in, consoles
}

// Mem is what SHOW MEM reports beyond Lists: the bytes of one object of
// each kind, and the prepared statements kept.
type Mem struct {
	ClientSize, ServerSize, PoolSize int
	Statements, StatementBytes       int
}
