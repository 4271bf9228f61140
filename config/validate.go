package config

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/muxpg/mux/auth"
)

var (
	authTypes  = []string{AuthTrust, AuthMD5, AuthSCRAM, AuthLDAP}
	poolModes  = []string{PoolModeSession, PoolModeTransaction, PoolModeStatement}
	logFormats = []string{"text", "json"}
	logLevels  = []string{"debug", "info", "warn", "error"}
	// PinPolicies are the values of pin_policy.
	pinPolicies = []string{"pin", "error", "allow"}
)

// Validate checks c as Parse does after applying defaults, returning every
// problem joined with errors.Join and sorted, or nil. It is useful for
// configurations built in code from Default.
func (c *Config) Validate() error {
	if errs := c.problems(); len(errs) > 0 {
		return joinSorted(errs)
	}
	return nil
}

func joinSorted(errs []error) error {
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

// checker collects validation errors, each prefixed with its dotted key.
type checker struct{ errs []error }

func (ck *checker) add(key toml.Key, format string, args ...any) {
	ck.errs = append(ck.errs, fmt.Errorf("%s: %s", key, fmt.Sprintf(format, args...)))
}

func (ck *checker) oneOf(key toml.Key, v string, allowed []string) {
	if !slices.Contains(allowed, v) {
		ck.add(key, "%q is not one of %s", v, strings.Join(allowed, ", "))
	}
}

func (ck *checker) intRange(key toml.Key, v, lo, hi int) {
	if v < lo || v > hi {
		ck.add(key, "%d is out of range %d..%d", v, lo, hi)
	}
}

func (ck *checker) atLeast(key toml.Key, v, lo int) {
	if v < lo {
		ck.add(key, "%d is less than %d", v, lo)
	}
}

func (ck *checker) nonNegative(key toml.Key, d Duration) {
	if d < 0 {
		ck.add(key, "%s is negative", d)
	}
}

func (ck *checker) name(key toml.Key, what, v string) {
	switch {
	case v == "":
		ck.add(key, "%s must not be empty", what)
	case len(v) > MaxNameLen:
		ck.add(key, "%s is %d bytes long; the maximum is %d", what, len(v), MaxNameLen)
	case strings.IndexByte(v, 0) >= 0:
		ck.add(key, "%s must not contain NUL bytes", what)
	}
}

func (ck *checker) secret(key toml.Key, v string) {
	if err := ValidateSecret(v); err != nil {
		ck.add(key, "%v", err)
	}
}

func (c *Config) problems() []error {
	var ck checker
	c.tlsProblems(&ck)
	c.peerProblems(&ck)
	c.consoleProblems(&ck)
	c.listenProblems(&ck)
	c.authProblems(&ck)
	c.poolProblems(&ck)
	c.timeoutProblems(&ck)
	c.protocolProblems(&ck)
	c.databasesProblems(&ck)
	c.hostChecksProblems(&ck)
	c.limitsProblems(&ck)
	c.serverReuseProblems(&ck)
	c.usersProblems(&ck)
	return ck.errs
}

// tomlKey is the key made of parts, for checker's messages.
func tomlKey(parts ...string) toml.Key { return toml.Key(parts) }

// consoleProblems checks the handover socket, the HTTP listener and the console user lists.
func (c *Config) consoleProblems(ck *checker) {
	if strings.IndexByte(c.HandoverSocket, 0) >= 0 || len(c.HandoverSocket) > 100 {
		ck.add(tomlKey("handover_socket"), "must be a path of at most 100 bytes")
	}
	if c.HTTPListen != "" {
		if err := checkListenAddr(c.HTTPListen); err != nil {
			ck.add(tomlKey("http_listen"), "%q: %v", c.HTTPListen, err)
		}
	}
	ck.oneOf(tomlKey("status_page"), c.StatusPage, statusPageModes)
	for i, u := range c.AdminUsers {
		ck.name(tomlKey("admin_users"), fmt.Sprintf("entry %d", i+1), u)
	}
	for i, u := range c.StatsUsers {
		ck.name(tomlKey("stats_users"), fmt.Sprintf("entry %d", i+1), u)
	}
}

// listenProblems checks the listeners, the Unix socket and the client limits.
func (c *Config) listenProblems(ck *checker) {
	if len(c.Listen) == 0 && c.UnixSocketDir == "" {
		ck.add(tomlKey("listen"), "must not be empty unless unix_socket_dir is set")
	}
	seen := map[string]bool{}
	for i, addr := range c.Listen {
		key := tomlKey("listen")
		if err := checkListenAddr(addr); err != nil {
			ck.add(key, "address %d (%q): %v", i+1, addr, err)
		} else if seen[addr] {
			ck.add(key, "address %q is listed twice", addr)
		}
		seen[addr] = true
	}
	if strings.IndexByte(c.UnixSocketDir, 0) >= 0 {
		ck.add(tomlKey("unix_socket_dir"), "must not contain NUL bytes")
	}
	if _, err := parseMode(c.UnixSocketMode); err != nil {
		ck.add(tomlKey("unix_socket_mode"), "%v", err)
	}
	ck.atLeast(tomlKey("max_client_conn"), c.MaxClientConn, 1)
	if c.Workers != AutoWorkers && (c.Workers < 0 || c.Workers > 256) {
		ck.add(tomlKey("workers"), "must be \"auto\" or from 0 to 256 (one loop per core is plenty), got %d", int(c.Workers))
	}
}

// authProblems checks auth_type and the auth_* settings.
func (c *Config) authProblems(ck *checker) {
	ck.oneOf(tomlKey("auth_type"), c.AuthType, authTypes)
	c.checkLDAP(ck)
	if c.AuthUser != "" && c.AuthFile == "" {
		if _, ok := c.Users[c.AuthUser]; !ok {
			ck.add(tomlKey("auth_user"), "%q must be listed in [users] with its password", c.AuthUser)
		}
	}
	if c.AuthUser != "" && !strings.Contains(c.AuthQuery, "$1") {
		ck.add(tomlKey("auth_query"), "must contain $1 (the user name)")
	}
	if c.AuthFile != "" {
		if _, err := os.Stat(c.AuthFile); err != nil {
			ck.add(tomlKey("auth_file"), "%v", err)
		}
	}
	if c.AuthHBAFile != "" {
		if _, err := os.Stat(c.AuthHBAFile); err != nil {
			ck.add(tomlKey("auth_hba_file"), "%v", err)
		}
	}
	if c.AuthIdentFile != "" {
		if c.AuthHBAFile == "" {
			ck.add(tomlKey("auth_ident_file"), "needs auth_hba_file: its maps are used only by that file's map= options")
		} else if _, err := os.Stat(c.AuthIdentFile); err != nil {
			ck.add(tomlKey("auth_ident_file"), "%v", err)
		}
	}
}

// poolProblems checks the global pool mode and sizes.
func (c *Config) poolProblems(ck *checker) {
	ck.oneOf(tomlKey("pool_mode"), c.PoolMode, poolModes)
	ck.atLeast(tomlKey("default_pool_size"), c.DefaultPoolSize, 1)
	if c.DefaultPoolSize >= 1 {
		ck.intRange(tomlKey("min_pool_size"), c.MinPoolSize, 0, c.DefaultPoolSize)
	} else {
		ck.atLeast(tomlKey("min_pool_size"), c.MinPoolSize, 0)
	}
}

// timeoutProblems checks the durations and the socket and SCRAM settings beside them.
func (c *Config) timeoutProblems(ck *checker) {
	durations := []struct {
		key string
		d   Duration
	}{
		{"server_check_delay", c.ServerCheckDelay},
		{"server_lifetime", c.ServerLifetime},
		{"server_idle_timeout", c.ServerIdleTimeout},
		{"autodb_idle_timeout", c.AutodbIdleTimeout},
		{"server_connect_timeout", c.ServerConnectTimeout},
		{"server_login_retry", c.ServerLoginRetry},
		{"query_wait_timeout", c.QueryWaitTimeout},
		{"query_wait_notify", c.QueryWaitNotify},
		{"client_login_timeout", c.ClientLoginTimeout},
		{"client_idle_timeout", c.ClientIdleTimeout},
		{"idle_transaction_timeout", c.IdleTransactionTimeout},
		{"tcp_keepidle", c.TCPKeepIdle},
		{"query_timeout", c.QueryTimeout},
		{"client_write_timeout", c.ClientWriteTimeout},
		{"shutdown_timeout", c.ShutdownTimeout},
		{"tcp_keepintvl", c.TCPKeepIntvl},
		{"tcp_user_timeout", c.TCPUserTimeout},
		{"tcp_defer_accept", c.TCPDeferAccept},
	}
	for _, d := range durations {
		ck.nonNegative(tomlKey(d.key), d.d)
	}
	if c.ServerConnectTimeout == 0 {
		ck.add(tomlKey("server_connect_timeout"), "must be greater than 0")
	}
	if r := c.ServerLoginRetry; r == 0 || r > Duration(time.Minute) {
		ck.add(tomlKey("server_login_retry"), "%s is out of range (0s, 1m0s]", r)
	}
	ck.atLeast(tomlKey("tcp_keepcnt"), c.TCPKeepCnt, 0)
	ck.intRange(tomlKey("tcp_socket_buffer"), c.TCPSocketBuffer, 0, 1<<30)
	if _, err := c.UnixSocketGID(); err != nil {
		ck.add(tomlKey("unix_socket_group"), "%v", err)
	}
	ck.intRange(tomlKey("scram_iterations"), c.SCRAMIterations, 1, MaxSCRAMIterations)
	if c.StatsPeriod <= 0 {
		ck.add(tomlKey("stats_period"), "must be greater than 0")
	}
}

// protocolProblems checks the protocol and logging settings.
func (c *Config) protocolProblems(ck *checker) {
	for i, p := range c.IgnoreStartupParameters {
		if p == "" || strings.IndexByte(p, 0) >= 0 {
			ck.add(tomlKey("ignore_startup_parameters"), "entry %d (%q) is not a valid parameter name", i+1, p)
		}
	}
	if m := c.MaxMessageSize; m < KiB || m > GiB {
		ck.add(tomlKey("max_message_size"), "%s is out of range 1kB..1GB", m)
	}
	ck.atLeast(tomlKey("max_prepared_statements"), c.MaxPreparedStatements, 0)
	ck.oneOf(tomlKey("pin_policy"), c.PinPolicy, pinPolicies)
	ck.oneOf(tomlKey("log_format"), c.LogFormat, logFormats)
	ck.oneOf(tomlKey("log_level"), c.LogLevel, logLevels)
}

// databasesProblems checks [databases].
func (c *Config) databasesProblems(ck *checker) {
	if len(c.Databases) == 0 {
		ck.add(tomlKey("databases"), "at least one database must be configured")
	}
	for name, db := range c.Databases {
		c.checkDatabase(ck, name, db)
	}
}

// usersProblems checks [users].
func (c *Config) usersProblems(ck *checker) {
	for name, u := range c.Users {
		ck.name(tomlKey("users", name), "user name", name)
		pw := tomlKey("users", name, "password")
		if u.Password == "" {
			if c.AuthType != AuthTrust && c.AuthType != AuthLDAP {
				ck.add(pw, "must not be empty unless auth_type is trust or ldap")
			}
		} else {
			ck.secret(pw, u.Password)
			if sec, err := auth.ParseSecret(u.Password); err == nil && c.AuthType == AuthSCRAM && sec.Kind == auth.SecretMD5 {
				ck.add(pw, "an md5 secret cannot be used with auth_type scram-sha-256; store the plain password or a SCRAM secret")
			}
		}
		if u.PoolMode != "" {
			ck.oneOf(tomlKey("users", name, "pool_mode"), u.PoolMode, poolModes)
		}
	}
}

func (c *Config) checkDatabase(ck *checker, name string, db Database) {
	k := func(field string) toml.Key { return toml.Key{"databases", name, field} }
	ck.name(toml.Key{"databases", name}, "database name", name)
	checkHosts(ck, name, db, db.Host != "" || db.Port != 0)
	c.checkSplit(ck, name, db)
	for _, key := range db.ServerParameters.problems() {
		ck.add(k(key), "must not contain NUL bytes")
	}
	switch {
	case len(db.Hosts) > 0:
		// The hosts list replaces host and port.
	case db.Host == "":
		ck.add(k("host"), "must not be empty")
	case strings.IndexByte(db.Host, 0) >= 0:
		ck.add(k("host"), "must not contain NUL bytes")
	}
	if len(db.Hosts) == 0 {
		ck.intRange(k("port"), db.Port, 1, 65535)
	}
	if db.DBName != "" {
		ck.name(k("dbname"), "database name", db.DBName)
	}
	if db.User != "" {
		ck.name(k("user"), "user name", db.User)
	}
	ck.secret(k("password"), db.Password)
	if db.PoolMode != "" {
		ck.oneOf(k("pool_mode"), db.PoolMode, poolModes)
	}
	if db.AuthUser != "" {
		if _, ok := c.Users[db.AuthUser]; !ok {
			ck.add(k("auth_user"), "%q must be listed in [users] with its password", db.AuthUser)
		}
	}
	if db.PinPolicy != "" {
		ck.oneOf(k("pin_policy"), db.PinPolicy, pinPolicies)
	}
	if db.AuthQuery != "" && !strings.Contains(db.AuthQuery, "$1") {
		ck.add(k("auth_query"), "must contain $1 (the user name)")
	}
	if db.AuthDBName != "" {
		ck.name(k("auth_dbname"), "database name", db.AuthDBName)
	}
	ck.atLeast(k("pool_size"), db.PoolSize, 0)
	ck.atLeast(k("min_pool_size"), db.MinPoolSize, InheritMinPoolSize)

	size := db.PoolSize
	if size == 0 {
		size = c.DefaultPoolSize
	}
	switch {
	case size < 1 || db.MinPoolSize < InheritMinPoolSize:
		// Already reported.
	case db.MinPoolSize > size:
		ck.add(k("min_pool_size"), "%d is greater than the pool size %d", db.MinPoolSize, size)
	case db.MinPoolSize == InheritMinPoolSize && c.MinPoolSize > size:
		ck.add(k("pool_size"), "%d is less than the global min_pool_size %d; lower it or set databases.%s.min_pool_size",
			size, c.MinPoolSize, toml.Key{name})
	}
}

func checkListenAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return errors.New("want host:port, e.g. \"127.0.0.1:6432\" or \"[::1]:6432\"")
	}
	if strings.IndexByte(host, 0) >= 0 {
		return errors.New("host must not contain NUL bytes")
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("port %q is not a number in 0..65535", port)
	}
	return nil
}

func parseMode(s string) (fs.FileMode, error) {
	digits := strings.TrimPrefix(strings.TrimPrefix(s, "0o"), "0O")
	if digits == "" {
		return 0, errors.New("must be an octal permission such as \"0777\"")
	}
	m, err := strconv.ParseUint(digits, 8, 32)
	if err != nil || m > 0o777 {
		return 0, fmt.Errorf("%q is not an octal permission in 0000..0777", s)
	}
	return fs.FileMode(m), nil
}

// Known keys, derived from the toml struct tags.
var (
	topKeys  = tomlFieldNames(reflect.TypeFor[Config]())
	dbKeys   = tomlFieldNames(reflect.TypeFor[Database]())
	userKeys = tomlFieldNames(reflect.TypeFor[User]())
	peerKeys = tomlFieldNames(reflect.TypeFor[Peer]())
)

func tomlFieldNames(t reflect.Type) []string {
	names := make([]string, 0, t.NumField())
	for f := range t.Fields() {
		if f.Anonymous && f.Type.Kind() == reflect.Struct {
			names = append(names, tomlFieldNames(f.Type)...)
			continue
		}
		if tag, _, _ := strings.Cut(f.Tag.Get("toml"), ","); tag != "" && tag != "-" {
			names = append(names, tag)
		}
	}
	return names
}

// unknownKeys reports every key that is not part of the configuration
// schema. Keys are matched case-sensitively, although the toml package
// itself would decode "Host" into the host field.
func unknownKeys(md *toml.MetaData) []error {
	var errs []error
	reported := map[string]bool{}
	report := func(key toml.Key, known []string) {
		s := key.String()
		if reported[s] {
			return
		}
		reported[s] = true
		msg := fmt.Sprintf("unknown key %q", s)
		if hint := suggest(key[len(key)-1], known); hint != "" {
			msg += fmt.Sprintf("; did you mean %q?", hint)
		}
		errs = append(errs, errors.New(msg))
	}
	for _, key := range md.Keys() {
		switch {
		case len(key) == 1:
			if !slices.Contains(topKeys, key[0]) {
				report(key, topKeys)
			}
		case len(key) == 2 && (key[0] == "databases" || key[0] == "users" || key[0] == "peers"):
			// An entry name.
		case len(key) == 3 && key[0] == "databases":
			if !slices.Contains(dbKeys, key[2]) {
				report(key, dbKeys)
			}
		case len(key) == 3 && key[0] == "peers":
			if !slices.Contains(peerKeys, key[2]) {
				report(key, peerKeys)
			}
		case len(key) > 3 && key[0] == "databases":
			if known, bad := unknownHostKey(key); bad {
				report(key, known)
			}
		case len(key) == 3 && key[0] == "users":
			if !slices.Contains(userKeys, key[2]) {
				report(key, userKeys)
			}
		default:
			report(key, nil)
		}
	}
	for _, key := range md.Undecoded() {
		report(key, nil)
	}
	return errs
}

// suggest returns the known name closest to s if it is close enough to be a
// likely typo.
func suggest(s string, known []string) string {
	if len(s) > 64 {
		return ""
	}
	best, bestDist := "", 3
	for _, k := range known {
		if strings.EqualFold(s, k) {
			return k
		}
		if d := editDistance(strings.ToLower(s), k); d < bestDist {
			best, bestDist = k, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, in bytes.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

var (
	clientSSLModes = []string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}
	serverSSLModes = []string{"disable", "prefer", "require", "verify-ca", "verify-full"}
	tlsVersions    = []string{"tlsv1.2", "tlsv1.3"}
)

func (c *Config) tlsProblems(ck *checker) {
	k := func(s string) toml.Key { return toml.Key{s} }
	ck.oneOf(k("client_tls_sslmode"), c.ClientTLSSSLMode, clientSSLModes)
	ck.oneOf(k("server_tls_sslmode"), c.ServerTLSSSLMode, serverSSLModes)
	ck.oneOf(k("client_tls_min_version"), c.ClientTLSMinVersion, tlsVersions)
	if _, err := ECDHCurves(c.ClientTLSECDHCurve); err != nil {
		ck.add(k("client_tls_ecdhcurve"), "%v", err)
	}
	ck.oneOf(k("server_tls_min_version"), c.ServerTLSMinVersion, tlsVersions)
	if c.ClientTLSSSLMode != "disable" {
		if c.ClientTLSCertFile == "" {
			ck.add(k("client_tls_cert_file"), "required when client_tls_sslmode is %q", c.ClientTLSSSLMode)
		}
		if c.ClientTLSKeyFile == "" {
			ck.add(k("client_tls_key_file"), "required when client_tls_sslmode is %q", c.ClientTLSSSLMode)
		}
	}
	if strings.HasPrefix(c.ClientTLSSSLMode, "verify-") && c.ClientTLSCAFile == "" {
		ck.add(k("client_tls_ca_file"), "required when client_tls_sslmode is %q", c.ClientTLSSSLMode)
	}
	if strings.HasPrefix(c.ServerTLSSSLMode, "verify-") && c.ServerTLSCAFile == "" {
		ck.add(k("server_tls_ca_file"), "required when server_tls_sslmode is %q", c.ServerTLSSSLMode)
	}
	if (c.ServerTLSCertFile == "") != (c.ServerTLSKeyFile == "") {
		ck.add(k("server_tls_cert_file"), "server_tls_cert_file and server_tls_key_file must be set together")
	}
	for _, f := range []struct{ key, path string }{
		{"client_tls_key_file", c.ClientTLSKeyFile}, {"client_tls_cert_file", c.ClientTLSCertFile},
		{"client_tls_ca_file", c.ClientTLSCAFile}, {"server_tls_ca_file", c.ServerTLSCAFile},
		{"server_tls_key_file", c.ServerTLSKeyFile}, {"server_tls_cert_file", c.ServerTLSCertFile},
	} {
		if f.path == "" {
			continue
		}
		if _, err := os.Stat(f.path); err != nil {
			ck.add(k(f.key), "%v", err)
		}
	}
}
