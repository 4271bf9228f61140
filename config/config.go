// Package config loads, defaults and validates mux's TOML configuration and the files it names.
package config

import (
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Allowed values of the enumerated settings.
const (
	AuthTrust = "trust"
	AuthMD5   = "md5"
	AuthSCRAM = "scram-sha-256"
	AuthLDAP  = "ldap"

	PoolModeSession     = "session"
	PoolModeTransaction = "transaction"
	PoolModeStatement   = "statement"
)

// Defaults that are not obvious from Default.
const (
	// DefaultHost is the Postgres host of a database entry without host.
	DefaultHost = "127.0.0.1"
	// DefaultPort is the Postgres port of a database entry without port.
	DefaultPort = 5432
	// DefaultListenPort is the port used for the Unix socket name when no
	// TCP listen address is configured.
	DefaultListenPort = 6432
	// WildcardDatabase is the databases key that matches any database name
	// that has no entry of its own.
	WildcardDatabase = "*"
	// InheritMinPoolSize in Database.MinPoolSize means "use the global
	// min_pool_size". Parse stores it when a database entry has no
	// min_pool_size key.
	InheritMinPoolSize = -1
	// MaxNameLen is the longest database or user name Postgres accepts
	// (NAMEDATALEN-1).
	MaxNameLen = 63
	// DefaultStatsPeriod is stats_period's default, PgBouncer's.
	DefaultStatsPeriod = 60 * time.Second
	// DefaultSCRAMIterations is scram_iterations' default, PostgreSQL's.
	DefaultSCRAMIterations = 4096
	// MaxSCRAMIterations bounds scram_iterations: mux's SCRAM client
	// refuses larger counts (auth.MaxSCRAMIterations).
	MaxSCRAMIterations = 1_000_000
)

// Config is mux's configuration. Field comments give the defaults applied by
// Parse when a key is absent; config.example.toml documents every key.
type Config struct {
	// Listen holds TCP addresses (host:port) to accept clients on. Default
	// ["127.0.0.1:6432"]. May be empty only when UnixSocketDir is set.
	Listen []string `toml:"listen"`
	// UnixSocketDir, if set, makes mux also listen on the Unix socket
	// <dir>/.s.PGSQL.<port>; see UnixSocketPath. Default "" (disabled).
	UnixSocketDir string `toml:"unix_socket_dir"`
	// UnixSocketMode is the octal permission of the Unix socket. Default "0777".
	UnixSocketMode string `toml:"unix_socket_mode"`
	// UnixSocketGroup is the group (name or numeric id) the Unix socket is
	// given; "" = the group of the mux process. Default "".
	UnixSocketGroup string `toml:"unix_socket_group"`
	// MaxClientConn caps concurrent client connections. Default 10000.
	MaxClientConn int `toml:"max_client_conn"`
	// Workers is the number of event loops that relay plain-TCP clients
	// and read servers (Linux); 0 relays with a goroutine per busy
	// connection. "auto": one per four CPUs, at least one. Read at start
	// only. Default "auto".
	Workers Workers `toml:"workers"`
	// AuthType is how clients authenticate: trust, md5, scram-sha-256 or
	// ldap (a bind to the LDAP server of AuthLDAPOptions with the
	// cleartext password the client sends). Default scram-sha-256.
	AuthType string `toml:"auth_type"`
	// AuthLDAPOptions are the LDAP settings of auth_type ldap, PostgreSQL's
	// ldap* options as PgBouncer writes them: `ldapurl="ldap://host/basedn?uid?sub"`
	// or `ldapserver=host ldapprefix="cn=" ldapsuffix=",dc=example,dc=net"`.
	// auth_hba_file ldap rows carry their own. Default "".
	AuthLDAPOptions string `toml:"auth_ldap_options"`
	// AuthUser, if set, looks up users missing from [users] in Postgres with
	// AuthQuery, connecting as this user (which must be in [users]).
	AuthUser string `toml:"auth_user"`
	// AuthQuery returns (user name, secret) for $1. Default: a
	// schema-qualified lookup in pg_authid that ignores roles past
	// rolvaliduntil or without rolcanlogin.
	AuthQuery string `toml:"auth_query"`
	// AuthDBName is the database AuthQuery runs in; "" = the client's
	// target database.
	AuthDBName string `toml:"auth_dbname"`
	// AuthFile, if set, is a PgBouncer userlist.txt ("user" "secret" per
	// line) whose users are added to [users] (entries in [users] win).
	AuthFile string `toml:"auth_file"`
	// AuthHBAFile, if set, is a pg_hba.conf-format file deciding per
	// connection how (and whether) a client authenticates.
	AuthHBAFile string `toml:"auth_hba_file"`
	// AuthIdentFile, if set, is a pg_ident.conf-format file of the user
	// name maps that auth_hba_file's map= options name.
	AuthIdentFile string `toml:"auth_ident_file"`
	// PoolMode is the global pool mode: session, transaction or statement.
	// Default transaction.
	PoolMode string `toml:"pool_mode"`
	// DefaultPoolSize is the server connections per pool. Default 20.
	DefaultPoolSize int `toml:"default_pool_size"`
	// MinPoolSize is the server connections kept open per pool. Default 0.
	MinPoolSize int `toml:"min_pool_size"`
	// ServerResetQuery runs when a session-mode client leaves. Default
	// "DISCARD ALL"; "" means none.
	ServerResetQuery string `toml:"server_reset_query"`
	// ServerResetQueryAlways runs ServerResetQuery in transaction and
	// statement mode too, when a client lets go of a server. Default false.
	ServerResetQueryAlways bool `toml:"server_reset_query_always"`
	// ServerCheckDelay: a server idle longer than this runs ServerCheckQuery
	// before reuse. Default 30s; 0 means always check.
	ServerCheckDelay Duration `toml:"server_check_delay"`
	// ServerCheckQuery checks an idle server. Default "select 1"; "" disables
	// checks.
	ServerCheckQuery string `toml:"server_check_query"`
	// ServerLifetime closes servers older than this once idle. Default 1h;
	// 0 means unlimited.
	ServerLifetime Duration `toml:"server_lifetime"`
	// ServerIdleTimeout closes servers idle longer than this. Default 10m;
	// 0 means never.
	ServerIdleTimeout Duration `toml:"server_idle_timeout"`
	// AutodbIdleTimeout drops the pool of a database that has no entry of
	// its own (reached through "*", or removed from the configuration) once
	// no client has used it for this long. Default 1h; 0 means never.
	AutodbIdleTimeout Duration `toml:"autodb_idle_timeout"`
	// ServerConnectTimeout bounds connecting and logging in to Postgres.
	// Default 15s; must be positive.
	ServerConnectTimeout Duration `toml:"server_connect_timeout"`
	// ServerLoginRetry caps the back-off between failed attempts to connect
	// to a server. The back-off starts at 50ms and doubles up to this cap.
	// Default 1s; must be in (0, 60s].
	ServerLoginRetry Duration `toml:"server_login_retry"`
	// QueryWaitTimeout bounds how long a client waits for a server. Default
	// 2m; 0 means wait forever.
	QueryWaitTimeout Duration `toml:"query_wait_timeout"`
	// QueryWaitNotify: a client waiting this long for a server gets a
	// NOTICE with the reason, and again at each such interval. Default
	// 5s; 0 means none.
	QueryWaitNotify Duration `toml:"query_wait_notify"`
	// ClientLoginTimeout bounds a client's startup and authentication.
	// Default 1m; 0 means none.
	ClientLoginTimeout Duration `toml:"client_login_timeout"`
	// ClientIdleTimeout closes clients idle longer than this. Default 0 (off).
	ClientIdleTimeout Duration `toml:"client_idle_timeout"`
	// IdleTransactionTimeout closes clients idle inside a transaction longer
	// than this. Default 0 (off).
	IdleTransactionTimeout Duration `toml:"idle_transaction_timeout"`
	// TCPKeepalive enables keepalive on client and server sockets. Default true.
	TCPKeepalive bool `toml:"tcp_keepalive"`
	// TCPKeepIdle is the idle time before the first probe; 0 = OS default.
	TCPKeepIdle Duration `toml:"tcp_keepidle"`
	// TCPKeepIntvl is the time between probes; 0 = OS default.
	TCPKeepIntvl Duration `toml:"tcp_keepintvl"`
	// TCPKeepCnt is the number of unanswered probes before the connection is
	// dropped; 0 = OS default.
	TCPKeepCnt int `toml:"tcp_keepcnt"`
	// TCPUserTimeout sets TCP_USER_TIMEOUT on client and server sockets
	// (Linux; ignored elsewhere): how long sent data may stay
	// unacknowledged before the connection is dropped. 0 = OS default.
	// Default 0.
	TCPUserTimeout Duration `toml:"tcp_user_timeout"`
	// TCPSocketBuffer sets SO_SNDBUF and SO_RCVBUF on client and server
	// sockets, in bytes. 0 = OS default. Default 0.
	TCPSocketBuffer int `toml:"tcp_socket_buffer"`
	// TCPDeferAccept sets TCP_DEFER_ACCEPT on the listeners (Linux):
	// a connection is accepted once it has sent data, or after this long
	// (whole seconds). 0 = off. Default 0.
	TCPDeferAccept Duration `toml:"tcp_defer_accept"`
	// SCRAMIterations is the PBKDF2 iteration count of the SCRAM secrets
	// mux derives from plain-text passwords it checks clients against.
	// Default 4096 (PostgreSQL's and PgBouncer's).
	SCRAMIterations int `toml:"scram_iterations"`
	// ApplicationNameAddHost appends " - host(port)" of the client to the
	// application_name mux sets on servers for it. Default false.
	ApplicationNameAddHost bool `toml:"application_name_add_host"`
	// IgnoreStartupParameters lists startup parameter names (compared
	// case-insensitively) that mux drops instead of refusing. Default none.
	IgnoreStartupParameters []string `toml:"ignore_startup_parameters"`
	// MaxMessageSize refuses longer client messages. Default 256MB; allowed
	// 1kB..1GB.
	MaxMessageSize ByteSize `toml:"max_message_size"`
	// DisablePQExec refuses the simple query protocol from clients (FATAL
	// 08P01), as a defence against SQL injection that stacks statements.
	// Default false.
	DisablePQExec bool `toml:"disable_pqexec"`
	// PinPolicy says what happens in transaction and statement mode when a
	// client creates session state mux cannot carry to another server
	// (session advisory locks, temporary tables, WITH HOLD cursors, SQL
	// PREPARE, LOAD): "pin" keeps the client on its server until the state
	// is gone, "error" refuses the statement, "allow" ignores it (the
	// PgBouncer behaviour). Default pin.
	PinPolicy string `toml:"pin_policy"`
	// ListenFanout intercepts LISTEN/UNLISTEN in transaction and statement
	// mode and delivers notifications through one listening connection per
	// pool. Off: LISTEN is refused there. Default true.
	ListenFanout bool `toml:"listen_fanout"`
	// MaxPreparedStatements bounds the protocol-level prepared statements mux
	// keeps on each server connection in transaction and statement mode
	// (least recently used ones are closed). 0 turns only prepared
	// statement tracking off: named statements pass through unchanged, and
	// session state and LISTEN are handled as ever. Default 200.
	MaxPreparedStatements int `toml:"max_prepared_statements"`
	// QueryTimeout cancels a query running longer than this (a
	// CancelRequest; the server is kept). 0 = off. Default 0.
	QueryTimeout Duration `toml:"query_timeout"`
	// ClientWriteTimeout closes a client (and its server) that has not read
	// what mux must send it for this long. 0 = off. Default 60s.
	ClientWriteTimeout Duration `toml:"client_write_timeout"`
	// ShutdownTimeout bounds how long SIGTERM waits for clients to leave
	// before ending them with 57P01. Default 30s; 0 = wait forever.
	ShutdownTimeout Duration `toml:"shutdown_timeout"`

	// HandoverSocket is the Unix socket path through which a newly started
	// mux takes the listening sockets over from a running one (rolling
	// restart). "" disables hand-over. Default "".
	HandoverSocket string `toml:"handover_socket"`

	// AdminUsers may run every admin console command; StatsUsers only SHOW.
	AdminUsers []string `toml:"admin_users"`
	StatsUsers []string `toml:"stats_users"`
	// HTTPListen is the address of the HTTP endpoint (/metrics, /healthz,
	// /readyz). "" disables it. Default "127.0.0.1:9127".
	HTTPListen string `toml:"http_listen"`
	// StatusPage serves the status page at http_listen's "/": "auto" (only
	// when http_listen is a loopback address: the page shows user names
	// and client addresses), "on" or "off". Default "auto".
	StatusPage string `toml:"status_page"`

	// Client-side TLS.
	ClientTLSSSLMode    string `toml:"client_tls_sslmode"`     // disable | allow | prefer | require | verify-ca | verify-full; default disable
	ClientTLSKeyFile    string `toml:"client_tls_key_file"`    // PEM private key
	ClientTLSCertFile   string `toml:"client_tls_cert_file"`   // PEM certificate chain
	ClientTLSCAFile     string `toml:"client_tls_ca_file"`     // CA for client certificates (verify-ca, verify-full)
	ClientTLSMinVersion string `toml:"client_tls_min_version"` // tlsv1.2 | tlsv1.3; default tlsv1.2
	ClientTLSECDHCurve  string `toml:"client_tls_ecdhcurve"`   // auto, or curve names; default auto
	// Server-side TLS.
	ServerTLSSSLMode    string `toml:"server_tls_sslmode"`     // disable | prefer | require | verify-ca | verify-full; default disable
	ServerTLSCAFile     string `toml:"server_tls_ca_file"`     // CA to verify Postgres's certificate
	ServerTLSKeyFile    string `toml:"server_tls_key_file"`    // optional client key for Postgres
	ServerTLSCertFile   string `toml:"server_tls_cert_file"`   // optional client certificate for Postgres
	ServerTLSMinVersion string `toml:"server_tls_min_version"` // tlsv1.2 | tlsv1.3; default tlsv1.2

	// Fleet (peers.go): several mux instances behind one address.
	// PeerID names this instance in the cancel keys it issues: 0 (no
	// fleet) or 1..16383, or "ordinal" (the host name's trailing -N + 1).
	// Read at start only. Default 0.
	PeerID PeerID `toml:"peer_id"`
	// PeersDNS finds a peer without a [peers] entry by name: {ordinal}
	// (peer_id - 1) or {id} in it is replaced by the peer's. Default "".
	PeersDNS string `toml:"peers_dns"`
	// PeersDNSPort is the port of peers found through PeersDNS. Default 6432.
	PeersDNSPort int `toml:"peers_dns_port"`
	// PeerTLSSSLMode is how cancel requests travel to peers: disable,
	// prefer, require, verify-ca or verify-full (against PeerTLSCAFile).
	// Default disable.
	PeerTLSSSLMode string `toml:"peer_tls_sslmode"`
	PeerTLSCAFile  string `toml:"peer_tls_ca_file"`
	// Peers maps a peer_id to where that instance listens.
	Peers map[string]Peer `toml:"peers"`

	// LogFormat is text or json. Default text.
	LogFormat string `toml:"log_format"`
	// LogLevel is debug, info, warn or error. Default info.
	LogLevel string `toml:"log_level"`
	// LogConnections logs each client login (Info). Default true.
	LogConnections bool `toml:"log_connections"`
	// LogDisconnections logs each client disconnect with its reason (Info).
	// Default true.
	LogDisconnections bool `toml:"log_disconnections"`
	// LogPoolerErrors logs (Warn) each error mux itself sends a client
	// before closing it. Default true.
	LogPoolerErrors bool `toml:"log_pooler_errors"`
	// LogStats logs each database's averages every StatsPeriod. Default true.
	LogStats bool `toml:"log_stats"`
	// StatsPeriod is how often averages are computed for the log and for
	// SHOW STATS_AVERAGES. Default 60s; must be positive.
	StatsPeriod Duration `toml:"stats_period"`
	// Databases maps the database name a client asks for to a Postgres
	// database. At least one entry is required; the key "*" matches names
	// without an entry of their own.
	Databases map[string]Database `toml:"databases"`
	// Users maps client user names to their credentials.
	Users map[string]User `toml:"users"`
	// HostChecks: health checks of the hosts of routed entries (config/hosts.go).
	HostChecks
	// Limits: per-database and per-user connection limits, the reserve pool (config/limits.go).
	Limits
	// ServerReuse: transaction_timeout, cancel_wait_timeout,
	// server_round_robin, server_fast_close (config/entry.go).
	ServerReuse
}

// DefaultAuthQuery is auth_query's default: schema-qualified, so no
// search_path can redirect it, and refusing expired and NOLOGIN roles.
const DefaultAuthQuery = "SELECT rolname::text, CASE WHEN rolvaliduntil IS NULL OR rolvaliduntil > pg_catalog.now() THEN rolpassword END FROM pg_catalog.pg_authid WHERE rolname = $1 AND rolcanlogin"

// Database is one [databases.NAME] entry: where to connect for a client that
// asks for database NAME.
//
// As stored in Config.Databases the optional fields keep their raw values
// (PoolMode "" and PoolSize 0 mean "global", MinPoolSize InheritMinPoolSize
// means "global", DBName "" means "the requested name");
// Config.LookupDatabase returns entries with all of them resolved.
type Database struct {
	// Host is a host name or IP address, or a Unix socket directory if it
	// starts with "/". Default "127.0.0.1".
	Host string `toml:"host"`
	// Port is the Postgres port (also used for the socket name). Default 5432.
	Port int `toml:"port"`
	// DBName is the Postgres database name. Default: the entry's key, or for
	// "*" the database name the client asked for.
	DBName string `toml:"dbname"`
	// User, if set, is the Postgres user mux logs in as instead of the
	// client's user.
	User string `toml:"user"`
	// Password is the password for User, or for the client's user when User
	// is empty.
	Password string `toml:"password"`
	// PoolMode overrides the global pool mode for this database; a user's
	// pool_mode overrides it in turn (see Config.PoolModeFor).
	PoolMode string `toml:"pool_mode"`
	// PoolSize is the server connections per pool; 0 = default_pool_size.
	PoolSize int `toml:"pool_size"`
	// PinPolicy overrides the global pin_policy; "" means the global one.
	PinPolicy string `toml:"pin_policy"`
	// AuthUser overrides the global auth_user for this database.
	AuthUser string `toml:"auth_user"`
	// AuthQuery and AuthDBName override the global auth_query and
	// auth_dbname for this database's clients.
	AuthQuery  string `toml:"auth_query"`
	AuthDBName string `toml:"auth_dbname"`
	// MinPoolSize is the server connections kept open per pool;
	// InheritMinPoolSize (-1, the value when the key is absent) = global
	// min_pool_size.
	MinPoolSize int `toml:"min_pool_size"`
	// ServerParameters: startup parameters for the entry's servers.
	ServerParameters
	// HostsConfig: several hosts, roles and routing (config/hosts.go).
	HostsConfig
	// DatabaseLimits: the entry's connection limits (config/limits.go).
	DatabaseLimits
	// DatabaseServer: server_lifetime, connect_query (config/entry.go).
	DatabaseServer
}

// User is one [users.NAME] entry.
type User struct {
	// Password is a plain-text password, an md5 secret or a SCRAM-SHA-256
	// secret (see ValidateSecret). It may be empty only with auth_type trust.
	Password string `toml:"password"`
	// PoolMode, if set, overrides the database and global pool modes for this
	// user's connections.
	PoolMode string `toml:"pool_mode"`
	// UserLimits: the user's pool size and connection limits (config/limits.go).
	UserLimits
	// UserTimeouts: the user's own timeouts (config/entry.go).
	UserTimeouts
}

// Default returns a configuration holding every default value and empty
// Databases and Users maps. It does not validate, because a configuration
// without databases is invalid.
func Default() *Config {
	return &Config{
		Listen:                  []string{"127.0.0.1:6432"},
		UnixSocketMode:          "0777",
		MaxClientConn:           10000,
		AuthType:                AuthSCRAM,
		PoolMode:                PoolModeTransaction,
		DefaultPoolSize:         20,
		MinPoolSize:             0,
		ServerResetQuery:        "DISCARD ALL",
		ServerCheckDelay:        Duration(30 * time.Second),
		ServerCheckQuery:        "select 1",
		ServerLifetime:          Duration(3600 * time.Second),
		ServerIdleTimeout:       Duration(600 * time.Second),
		AutodbIdleTimeout:       Duration(3600 * time.Second),
		ServerConnectTimeout:    Duration(15 * time.Second),
		ServerLoginRetry:        Duration(time.Second),
		QueryWaitTimeout:        Duration(120 * time.Second),
		QueryWaitNotify:         Duration(5 * time.Second),
		ClientLoginTimeout:      Duration(60 * time.Second),
		TCPKeepalive:            true,
		IgnoreStartupParameters: []string{},
		MaxMessageSize:          256 * MiB,
		MaxPreparedStatements:   200,
		PinPolicy:               "pin",
		AuthQuery:               DefaultAuthQuery,
		ListenFanout:            true,
		ClientWriteTimeout:      Duration(60 * time.Second),
		Workers:                 AutoWorkers,
		ShutdownTimeout:         Duration(30 * time.Second),
		AdminUsers:              []string{},
		StatsUsers:              []string{},
		HTTPListen:              "127.0.0.1:9127",
		StatusPage:              StatusPageAuto,
		ClientTLSSSLMode:        "disable",
		ClientTLSMinVersion:     "tlsv1.2",
		ClientTLSECDHCurve:      "auto",
		ServerTLSSSLMode:        "disable",
		ServerTLSMinVersion:     "tlsv1.2",
		PeersDNSPort:            DefaultPeerPort,
		PeerTLSSSLMode:          "disable",
		LogFormat:               "text",
		LogLevel:                "info",
		LogConnections:          true,
		LogDisconnections:       true,
		LogPoolerErrors:         true,
		LogStats:                true,
		StatsPeriod:             Duration(DefaultStatsPeriod),
		SCRAMIterations:         DefaultSCRAMIterations,
		Databases:               map[string]Database{},
		Users:                   map[string]User{},
		HostChecks:              defaultHostChecks(),
		Limits:                  defaultLimits(),
		ServerReuse:             defaultServerReuse(),
	}
}

// Parse decodes a TOML configuration, rejects unknown keys, applies defaults
// for absent keys and validates the result. Syntax errors and values of the
// wrong TOML type stop decoding and are returned alone; otherwise every
// problem found is returned, joined with errors.Join and sorted, each naming
// its key by its full dotted path.
func Parse(data []byte) (*Config, error) {
	// Check the syntax first so that a toml.ParseError from the typed decode
	// below can only come from a value our own types refused.
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, err
	}
	c := Default()
	md, err := toml.Decode(string(data), c)
	if err != nil {
		return nil, decodeError(err)
	}
	for name, db := range c.Databases {
		if !md.IsDefined("databases", name, "host") && len(db.Hosts) == 0 {
			db.Host = DefaultHost
		}
		if !md.IsDefined("databases", name, "port") && len(db.Hosts) == 0 {
			db.Port = DefaultPort
		}
		if !md.IsDefined("databases", name, "min_pool_size") {
			db.MinPoolSize = InheritMinPoolSize
		}
		c.Databases[name] = db
	}
	errs := unknownKeys(&md)
	errs = append(errs, c.problems()...)
	if len(errs) > 0 {
		return nil, joinSorted(errs)
	}
	return c, nil
}

// tomlTypeError matches the toml package's messages for values of the wrong
// type, e.g. `toml: line 3 (last key "databases.app.port"): incompatible
// types: ...`.
var tomlTypeError = regexp.MustCompile(`^toml: (?:line (\d+) )?\(last key ("(?:[^"\\]|\\.)*")\): (.*)$`)

// decodeError rewrites an error from decoding well-formed TOML into the
// Config so that it starts with the offending key, like validation errors.
func decodeError(err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) && pe.LastKey != "" {
		// Syntax was checked before, so this is a value one of our types
		// refused.
		return fmt.Errorf("%s: %s", pe.LastKey, pe.Message)
	}
	m := tomlTypeError.FindStringSubmatch(err.Error())
	if m == nil {
		return err
	}
	key, qerr := strconv.Unquote(m[2])
	if qerr != nil {
		return err
	}
	if m[1] != "" {
		return fmt.Errorf("%s: %s (line %s)", key, m[3], m[1])
	}
	return fmt.Errorf("%s: %s", key, m[3])
}

// LookupDatabase returns the entry for the database name a client asked for,
// or else the "*" entry. The result has DBName, PoolMode, PoolSize and
// MinPoolSize resolved: DBName defaults to name, and the pool settings to the
// global ones. It reports false if there is no matching entry or name is
// empty.
func (c *Config) LookupDatabase(name string) (Database, bool) {
	if name == "" {
		return Database{}, false
	}
	db, ok := c.Databases[name]
	if !ok {
		if db, ok = c.Databases[WildcardDatabase]; !ok {
			return Database{}, false
		}
	}
	if db.DBName == "" {
		db.DBName = name
	}
	if db.PoolMode == "" {
		db.PoolMode = c.PoolMode
	}
	if db.PinPolicy == "" {
		db.PinPolicy = c.PinPolicy
	}
	if db.PoolSize <= 0 {
		db.PoolSize = c.DefaultPoolSize
	}
	if db.MinPoolSize < 0 {
		db.MinPoolSize = c.MinPoolSize
	}
	db.MinPoolSize = min(db.MinPoolSize, db.PoolSize)
	return db, true
}

// PoolModeFor returns the pool mode for user's connections to db. As in
// PgBouncer, the user's pool_mode overrides the database's, which overrides
// the global pool_mode. db may be a raw entry from Databases or one returned
// by LookupDatabase.
func (c *Config) PoolModeFor(db Database, user string) string {
	if u, ok := c.Users[user]; ok && u.PoolMode != "" {
		return u.PoolMode
	}
	if db.PoolMode != "" {
		return db.PoolMode
	}
	return c.PoolMode
}

// UnixSocketPath returns the Unix socket mux listens on,
// <unix_socket_dir>/.s.PGSQL.<port>, where port is that of the first listen
// address or DefaultListenPort. It returns "" if unix_socket_dir is not set.
func (c *Config) UnixSocketPath() string {
	if c.UnixSocketDir == "" {
		return ""
	}
	port := strconv.Itoa(DefaultListenPort)
	if len(c.Listen) > 0 {
		if _, p, err := net.SplitHostPort(c.Listen[0]); err == nil {
			port = p
		}
	}
	return filepath.Join(c.UnixSocketDir, ".s.PGSQL."+port)
}

// UnixSocketFileMode returns unix_socket_mode as a file mode. An invalid mode
// (which Validate reports) yields 0777.
func (c *Config) UnixSocketFileMode() fs.FileMode {
	m, err := parseMode(c.UnixSocketMode)
	if err != nil {
		return 0o777
	}
	return m
}

// UnixSocketGID returns unix_socket_group's group id, or -1 when it is not
// set (the socket keeps the process's group).
func (c *Config) UnixSocketGID() (int, error) {
	if c.UnixSocketGroup == "" {
		return -1, nil
	}
	if gid, err := strconv.Atoi(c.UnixSocketGroup); err == nil && gid >= 0 {
		return gid, nil
	}
	g, err := user.LookupGroup(c.UnixSocketGroup)
	if err != nil {
		return -1, fmt.Errorf("no group %q on this system", c.UnixSocketGroup)
	}
	return strconv.Atoi(g.Gid)
}

// IgnoresStartupParameter reports whether name is listed in
// ignore_startup_parameters, ignoring case.
func (c *Config) IgnoresStartupParameter(name string) bool {
	for _, p := range c.IgnoreStartupParameters {
		if strings.EqualFold(p, name) {
			return true
		}
	}
	return false
}

// Clone returns a deep copy of c.
func (c *Config) Clone() *Config {
	cp := *c
	cp.Listen = slices.Clone(c.Listen)
	cp.IgnoreStartupParameters = slices.Clone(c.IgnoreStartupParameters)
	cp.Databases = maps.Clone(c.Databases)
	cp.Users = maps.Clone(c.Users)
	cp.Peers = maps.Clone(c.Peers)
	return &cp
}

// Redacted returns a deep copy of c in which every non-empty password is
// replaced by "***", for logging. Empty passwords stay empty.
func (c *Config) Redacted() *Config {
	cp := c.Clone()
	for k, db := range cp.Databases {
		db.Password = redact(db.Password)
		cp.Databases[k] = db
	}
	for k, u := range cp.Users {
		u.Password = redact(u.Password)
		cp.Users[k] = u
	}
	cp.AuthLDAPOptions = redactLDAPOptions(cp.AuthLDAPOptions)
	return cp
}

func redact(s string) string {
	if s == "" {
		return ""
	}
	return "***"
}
