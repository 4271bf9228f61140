package pgbouncerconf

import (
	"errors"
	"fmt"
	"math"
	"net"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/muxpg/mux/auth"
	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/userlist"
)

// Result is a converted configuration.
type Result struct {
	// TOML is a complete mux configuration file.
	TOML []byte
	// Notes has one entry per PgBouncer setting (or part of one) that could
	// not be carried over, with the reason. Each also appears in TOML as a
	// "# NOT CARRIED OVER: " comment near the top.
	Notes []string
}

// now is replaced in tests.
var now = time.Now

// Convert maps PgBouncer settings to a mux configuration. auth holds the
// entries of the auth_file and may be nil.
//
// Every mux setting with a PgBouncer counterpart is written out with
// PgBouncer's effective value, its default where the ini file does not set
// it, because several defaults differ (pool_mode, max_client_conn,
// auth_type, listen address). PgBouncer defaults are those of version 1.25
// and later. Settings that cannot be carried over are reported in Notes.
// Convert fails if the ini file is invalid for PgBouncer itself or asks for
// something mux cannot do (auth_type cert without hba rules, pam).
func Convert(ini *INI, auth []userlist.Entry) (*Result, error) {
	return convert(ini, auth, nil)
}

// convert is Convert; checkHBA, if not nil, checks the auth_hba_file.
func convert(ini *INI, auth []userlist.Entry, checkHBA func(path string) error) (*Result, error) {
	if ini == nil {
		return nil, errors.New("pgbouncerconf: Convert needs an INI")
	}
	c := &converter{
		ini:      ini,
		auth:     auth,
		settings: map[string]KV{},
		used:     map[string]bool{},
		checkHBA: checkHBA,
	}
	for _, kv := range ini.Sections["pgbouncer"] {
		if _, seen := c.settings[kv.Key]; !seen {
			c.order = append(c.order, kv.Key)
		}
		c.settings[kv.Key] = kv
	}
	c.convert()
	if len(c.errs) > 0 {
		return nil, errors.Join(c.errs...)
	}
	return &Result{TOML: c.render(), Notes: c.notes}, nil
}

type converter struct {
	ini      *INI
	auth     []userlist.Entry
	settings map[string]KV   // [pgbouncer], the last entry for each name
	order    []string        // setting names in file order
	used     map[string]bool // settings already handled
	notes    []string
	errs     []error
	d        doc
	cur      *group

	// Values needed by more than one part of the conversion.
	peerID          int64  // peer_id; [peers] is carried only with one
	authType        string // mux auth_type
	pgAuthType      string // PgBouncer auth_type, lower-cased
	socketDir       string // PgBouncer's unix_socket_dir
	defaultPoolSize int64
	minPoolSize     int64
	secrets         map[string]string // auth_file user -> secret (last wins)
	authGroup       *group            // "Client authentication", completed after [users]
	authQuery       string            // mux auth_query
	authUser        KV                // PgBouncer's auth_user, if set
	dbAuthUsers     []dbAuthUser      // per-database auth_user, checked after [users]
	kept            map[string]bool   // users written to [users]
	databaseDefs    map[string]KV     // [databases] entries by name
	checkHBA        func(path string) error
}

// dbAuthUser is a database's auth_user, written once [users] is known.
type dbAuthUser struct {
	table *group
	user  string
	label string
}

func (c *converter) convert() {
	c.secrets = map[string]string{}
	for _, e := range c.auth {
		c.secrets[e.User] = e.Secret
	}
	c.listening()
	c.authentication()
	c.scramIterations()
	c.pooling()
	c.serverConnections()
	c.serverReuse() // convert_reuse.go
	c.boolSetting("application_name_add_host", "0")
	c.clientTimeouts()
	c.clientReuseTimeouts()
	c.administration()
	c.tlsSettings()
	c.keepalive()
	c.protocol()
	c.logging()
	c.fleet()
	c.muxOnly()
	c.leftovers()
	c.databases()
	c.users()
	c.authLookup()
	c.peerTables()
}

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

// value returns a [pgbouncer] setting's raw value, or def, and the entry it
// came from (a synthetic one holding def if the file does not set it).
func (c *converter) value(key, def string) (string, KV, bool) {
	c.used[key] = true
	if kv, ok := c.settings[key]; ok {
		return kv.Value, kv, true
	}
	return def, KV{Key: key, Value: def}, false
}

func (c *converter) where(kv KV) string {
	return fmt.Sprintf("%s:%d", filepath.Base(displayName(kv.File)), kv.Line)
}

// origin is the trailing comment of a setting carried over unchanged.
func (c *converter) origin(kv KV, ok bool) string {
	if ok {
		return c.where(kv)
	}
	return "PgBouncer default"
}

// from is the trailing comment of a setting derived from another one.
func (c *converter) from(kv KV, ok bool) string {
	switch {
	case ok:
		return fmt.Sprintf("from %s = %s (%s)", kv.Key, kv.Value, c.where(kv))
	case kv.Value == "":
		return fmt.Sprintf("from %s (PgBouncer default: not set)", kv.Key)
	default:
		return fmt.Sprintf("from %s (PgBouncer default %s)", kv.Key, kv.Value)
	}
}

func (c *converter) fail(kv KV, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if kv.Line > 0 {
		c.errs = append(c.errs, fmt.Errorf("%s: %s: %s", c.where(kv), kv.Key, msg))
	} else {
		c.errs = append(c.errs, fmt.Errorf("%s: %s", kv.Key, msg))
	}
}

func (c *converter) note(format string, args ...any) {
	c.notes = append(c.notes, fmt.Sprintf(format, args...))
}

// noteSetting records that a [pgbouncer] setting was not carried over.
func (c *converter) noteSetting(kv KV, ok bool, reason string) {
	if ok {
		c.note("%s = %q (%s): %s", kv.Key, kv.Value, c.where(kv), reason)
	} else {
		c.note("%s (PgBouncer default %q): %s", kv.Key, kv.Value, reason)
	}
}

func (c *converter) section(title string) {
	c.cur = &group{title: title}
	c.d.groups = append(c.d.groups, c.cur)
}

func (c *converter) add(key, value, comment string) {
	c.cur.lines = append(c.cur.lines, setting{key: key, value: value, comment: comment})
}

// addString adds a string setting; a value that is not valid UTF-8 (which
// TOML cannot hold) is an error.
func (c *converter) addString(key, value, comment string, kv KV) {
	if !utf8.ValidString(value) {
		c.fail(kv, "value is not valid UTF-8")
		return
	}
	c.add(key, tomlString(value), comment)
}

// intSetting reads an integer setting that must lie in lo..hi.
func (c *converter) intSetting(key string, def, lo, hi int64) (int64, KV, bool) {
	raw, kv, ok := c.value(key, strconv.FormatInt(def, 10))
	n, err := parseInt(raw)
	if err == nil && (n < lo || n > hi) {
		err = fmt.Errorf("%d is out of range %d..%d", n, lo, hi)
	}
	if err != nil {
		c.fail(kv, "%v", err)
		return def, kv, ok
	}
	return n, kv, ok
}

// intAsIs carries an integer setting over under the same name.
func (c *converter) intAsIs(key string, def, lo, hi int64) {
	n, kv, ok := c.intSetting(key, def, lo, hi)
	c.add(key, tomlInt(n), c.origin(kv, ok))
}

// intDuration carries an integer setting in unit (PgBouncer's seconds or
// milliseconds) over as a duration under the same name.
func (c *converter) intDuration(key string, def, hi int64, unit time.Duration) {
	n, kv, ok := c.intSetting(key, def, 0, hi)
	c.add(key, tomlString(formatDuration(time.Duration(n)*unit)), c.origin(kv, ok))
}

func (c *converter) secondsSetting(key string, def float64) (time.Duration, KV, bool) {
	raw, kv, ok := c.value(key, strconv.FormatFloat(def, 'f', -1, 64))
	d, err := parseSeconds(raw)
	if err != nil {
		c.fail(kv, "%v", err)
		d, _ = parseSeconds(strconv.FormatFloat(def, 'f', -1, 64))
	}
	return d, kv, ok
}

// durationSetting carries a time setting over under the same name.
func (c *converter) durationSetting(key string, def float64) {
	d, kv, ok := c.secondsSetting(key, def)
	c.add(key, tomlString(formatDuration(d)), c.origin(kv, ok))
}

func (c *converter) listening() {
	c.section("Listening for clients")
	addrs, addrKV, addrOK := c.value("listen_addr", "")
	port, portKV, portOK := c.intSetting("listen_port", config.DefaultListenPort, 1, 65535)
	listen := []string{}
	for _, a := range splitList(addrs) {
		if a == "*" {
			a = "0.0.0.0" // Go listens on IPv4 and IPv6 for the wildcard address
		}
		a = strings.TrimSuffix(strings.TrimPrefix(a, "["), "]")
		addr := net.JoinHostPort(a, strconv.FormatInt(port, 10))
		if h, _, err := net.SplitHostPort(addr); err != nil || h != a || strings.ContainsAny(a, "[]\x00") {
			c.fail(addrKV, "%q is not a host name or IP address", a)
			continue
		}
		if !slices.Contains(listen, addr) {
			listen = append(listen, addr)
		}
	}
	comment := c.from(addrKV, addrOK) + "; " + c.from(portKV, portOK)
	if len(listen) == 0 {
		comment = "listen_addr not set: PgBouncer accepts only Unix socket connections"
	}
	if !utf8.ValidString(addrs) {
		c.fail(addrKV, "value is not valid UTF-8")
	}
	c.add("listen", tomlStrings(listen), comment)

	dir, dirKV, dirOK := c.value("unix_socket_dir", "/tmp")
	c.socketDir = dir
	if strings.IndexByte(dir, 0) >= 0 {
		c.fail(dirKV, "value contains a NUL byte")
	}
	comment = c.origin(dirKV, dirOK)
	if strings.HasPrefix(dir, "@") {
		c.noteSetting(dirKV, dirOK, "mux cannot listen on abstract-namespace Unix sockets; the Unix socket is disabled")
		dir, comment = "", "abstract-namespace socket "+dirKV.Value+" is not supported"
	}
	c.addString("unix_socket_dir", dir, comment, dirKV)
	switch {
	case len(listen) == 0 && dir == "":
		c.fail(dirKV, "neither listen_addr nor a usable unix_socket_dir is set, so there is nowhere to accept clients")
	case len(listen) == 0 && port != config.DefaultListenPort:
		c.note("listen_port = %d (%s): with no TCP listen address mux names its Unix socket .s.PGSQL.%d, not .s.PGSQL.%d; add a listen address with port %d to keep the name",
			port, c.where(portKV), config.DefaultListenPort, port, port)
	}

	mode, modeKV, modeOK := c.intSetting("unix_socket_mode", 0o777, 0, 0o7777)
	if mode > 0o777 {
		c.noteSetting(modeKV, modeOK, fmt.Sprintf("mux cannot set the setuid, setgid or sticky bit on its socket; using %04o", mode&0o777))
	}
	c.add("unix_socket_mode", tomlString(fmt.Sprintf("%04o", mode&0o777)), c.origin(modeKV, modeOK))
	if g, kv, ok := c.value("unix_socket_group", ""); ok {
		c.addString("unix_socket_group", g, c.origin(kv, ok), kv)
	}

	c.intAsIs("max_client_conn", 100, 1, math.MaxInt32)
}

func (c *converter) authentication() {
	c.section("Client authentication")
	raw, kv, ok := c.value("auth_type", "md5")
	c.pgAuthType = strings.ToLower(strings.TrimSpace(raw))
	comment := c.origin(kv, ok)
	switch c.pgAuthType {
	case config.AuthTrust, config.AuthMD5, config.AuthSCRAM, config.AuthLDAP:
		c.authType = c.pgAuthType
	case "plain":
		// mux never asks for a clear-text password. md5 accepts the same
		// plain and md5 secrets (and SCRAM secrets, with SCRAM); without md5
		// secrets, SCRAM is the safer choice.
		c.authType = config.AuthSCRAM
		for _, e := range c.auth {
			if s, err := auth.ParseSecret(e.Secret); err == nil && s.Kind == auth.SecretMD5 {
				c.authType = config.AuthMD5
				break
			}
		}
		c.noteSetting(kv, ok, fmt.Sprintf("mux does not accept clear-text passwords; clients must use %s instead (libpq and all common drivers do)", c.authType))
		comment = c.from(kv, ok)
	case "any":
		c.authType = config.AuthTrust
		c.noteSetting(kv, ok, "mux has no \"any\"; using trust, which also skips passwords but admits only the users listed in [users]")
		comment = c.from(kv, ok)
	case "cert":
		c.fail(kv, "mux authenticates with client certificates only through hba rules: write a file with a line such as `hostssl all all all cert`, set auth_type = hba and auth_hba_file to it in a copy of the ini file, and import that")
	case "hba":
		// The rules decide; auth_type then only matters for checking the
		// secrets in [users], and md5 accepts every kind.
		c.authType = config.AuthMD5
		comment = c.from(kv, ok) + "; auth_hba_file decides"
	case "pam":
		c.fail(kv, "mux cannot check passwords with %s; import a copy of the file with auth_type = scram-sha-256 (or md5) and list the users' passwords or secrets in the auth_file", c.pgAuthType)
	default:
		c.fail(kv, "unknown auth_type %q", raw)
	}
	if c.authType != "" {
		c.add("auth_type", tomlString(c.authType), comment)
	}
	c.used["auth_file"] = true // read by Import; its users end up in [users]
	c.ldapOptions(kv)

	hbaFile, hbaKV, hbaOK := c.value("auth_hba_file", "")
	switch {
	case c.pgAuthType != "hba":
		if hbaFile != "" {
			c.note("auth_hba_file = %q (%s): not used, because auth_type is not hba", hbaFile, c.where(hbaKV))
		}
		hbaFile = ""
	case hbaFile == "":
		c.fail(kv, "auth_type = hba needs auth_hba_file")
	case c.checkHBA != nil:
		if err := c.checkHBA(hbaFile); err != nil {
			msg := strings.ReplaceAll(err.Error(), "\n", "; ")
			c.note("auth_hba_file = %q (%s): mux cannot use these rules as they are, and will not start until they are fixed: %s", hbaFile, c.where(hbaKV), msg)
		}
	}
	c.addString("auth_hba_file", hbaFile, c.origin(hbaKV, hbaOK && hbaFile != ""), hbaKV)
	c.identFile(hbaFile)

	query, qKV, qOK := c.value("auth_query", "")
	comment = c.origin(qKV, qOK)
	switch {
	case !qOK:
		query, comment = config.DefaultAuthQuery, "mux's default, a safer form of PgBouncer's"
	case isPgBouncerDefaultQuery(query):
		c.note("auth_query = %q (%s): PgBouncer's default query, replaced by mux's, which also refuses expired and NOLOGIN roles and cannot be redirected by search_path", query, c.where(qKV))
		query, comment = config.DefaultAuthQuery, c.from(qKV, qOK)+"; mux's safer default"
	}
	c.addString("auth_query", query, comment, qKV)
	c.authQuery = query
	// auth_user and auth_dbname need [users] and [databases]; authLookup
	// fills them in.
	c.authGroup = c.cur
	c.add("auth_user", "", "")
	c.add("auth_dbname", "", "")
	c.used["auth_user"], c.used["auth_dbname"] = true, true
}

// setAuth fills in a line added by authentication.
func (c *converter) setAuth(key, value, comment string) {
	for i := range c.authGroup.lines {
		if l := &c.authGroup.lines[i]; l.key == key {
			l.value, l.comment = tomlString(value), comment
		}
	}
}

var operatorSpace = regexp.MustCompile(` ?([=<>(),]) ?`)

// isPgBouncerDefaultQuery reports whether q is one of the auth_query
// defaults of PgBouncer versions, ignoring case and spacing.
func isPgBouncerDefaultQuery(q string) bool {
	norm := func(s string) string {
		s = strings.ToLower(strings.Join(strings.Fields(s), " "))
		return operatorSpace.ReplaceAllString(s, "$1")
	}
	switch norm(q) {
	case norm("SELECT usename, passwd FROM pg_shadow WHERE usename=$1"),
		norm("SELECT rolname, CASE WHEN rolvaliduntil < now() THEN NULL ELSE rolpassword END FROM pg_authid WHERE rolname=$1 AND rolcanlogin"):
		return true
	}
	return false
}

// authLookup writes auth_user and auth_dbname, which need [users] and
// [databases] to be known.
func (c *converter) authLookup() {
	raw, kv, ok := c.value("auth_user", "")
	comment := c.origin(kv, ok && raw != "")
	switch {
	case raw == "":
	case !c.kept[raw]:
		c.note("auth_user = %q (%s): not carried over, because mux needs the auth_user in [users] with its password and %q is not there; users missing from [users] cannot log in", raw, c.where(kv), raw)
		raw, comment = "", "not carried over; see the notes at the top"
	}
	c.setAuth("auth_user", raw, comment)
	if raw != "" && !strings.Contains(c.authQuery, "$1") {
		c.fail(c.settings["auth_query"], "the query must contain $1 (the user name)")
	}
	for _, d := range c.dbAuthUsers {
		if c.kept[d.user] {
			d.table.lines = append(d.table.lines, setting{key: "auth_user", value: tomlString(d.user)})
		} else {
			c.note("%s: auth_user=%q not carried over, because mux needs it in [users] with its password", d.label, d.user)
		}
	}

	// auth_dbname names a [databases] entry in both.
	name, kv, ok := c.value("auth_dbname", "")
	if p := nameProblem(name); name != "" && p != "" {
		c.fail(kv, "%s", p)
		name = ""
	}
	c.setAuth("auth_dbname", name, c.origin(kv, ok && name != ""))
}

func (c *converter) pooling() {
	c.section("Pooling")
	raw, kv, ok := c.value("pool_mode", config.PoolModeSession)
	mode, valid := poolMode(raw)
	if !valid {
		c.fail(kv, "unknown pool_mode %q", raw)
	}
	c.add("pool_mode", tomlString(mode), c.origin(kv, ok))

	var n int64
	n, kv, ok = c.intSetting("default_pool_size", 20, 1, math.MaxInt32)
	c.defaultPoolSize = n
	c.add("default_pool_size", tomlInt(n), c.origin(kv, ok))

	n, kv, ok = c.intSetting("min_pool_size", 0, 0, math.MaxInt32)
	comment := c.origin(kv, ok)
	if n > c.defaultPoolSize {
		comment += fmt.Sprintf("; capped at default_pool_size as PgBouncer does (was %d)", n)
		n = c.defaultPoolSize
	}
	c.minPoolSize = n
	c.add("min_pool_size", tomlInt(n), comment)

	raw, kv, ok = c.value("server_reset_query", "DISCARD ALL")
	c.addString("server_reset_query", raw, c.origin(kv, ok), kv)
	c.boolSetting("server_reset_query_always", "0")

	c.intAsIs("max_prepared_statements", 200, 0, math.MaxInt32)
	c.limitSettings()
}

func poolMode(s string) (string, bool) {
	m := strings.ToLower(strings.TrimSpace(s))
	switch m {
	case config.PoolModeSession, config.PoolModeTransaction, config.PoolModeStatement:
		return m, true
	}
	return config.PoolModeSession, false
}

func (c *converter) serverConnections() {
	c.section("Server connections")
	c.durationSetting("server_check_delay", 30)

	raw, kv, ok := c.value("server_check_query", "select 1")
	comment := c.origin(kv, ok)
	if raw == "<empty>" {
		raw, comment = "select 1", c.from(kv, ok)+": PgBouncer sends an empty query, mux a trivial one"
	}
	c.addString("server_check_query", raw, comment, kv)

	d, kv, ok := c.secondsSetting("server_lifetime", 3600)
	comment = c.origin(kv, ok)
	if d == 0 {
		// PgBouncer's 0 means "use each server connection once"; mux's 0
		// means "no limit". A tiny lifetime closes it as soon as it is idle.
		d, comment = time.Millisecond, c.from(kv, ok)+": 0 uses each server connection once"
	}
	c.add("server_lifetime", tomlString(formatDuration(d)), comment)

	c.durationSetting("server_idle_timeout", 600)
	c.durationSetting("autodb_idle_timeout", 3600)

	d, kv, ok = c.secondsSetting("server_connect_timeout", 15)
	comment = c.origin(kv, ok)
	if d == 0 {
		d = time.Hour
		c.noteSetting(kv, ok, "mux needs a limit on connecting to Postgres; using 1h")
		comment = c.from(kv, ok)
	}
	c.add("server_connect_timeout", tomlString(formatDuration(d)), comment)

	d, kv, ok = c.secondsSetting("server_login_retry", 15)
	comment = c.origin(kv, ok) + "; mux backs off from 50ms up to this"
	switch {
	case d == 0:
		d = time.Millisecond
		comment = c.from(kv, ok) + ": retry at once"
	case d > time.Minute:
		c.noteSetting(kv, ok, "mux waits at most 1m between attempts to connect to Postgres; using 1m")
		d, comment = time.Minute, c.from(kv, ok)
	}
	c.add("server_login_retry", tomlString(formatDuration(d)), comment)
}

func (c *converter) clientTimeouts() {
	c.section("Client timeouts")
	c.durationSetting("query_wait_timeout", 120)
	c.durationSetting("query_wait_notify", 5)
	c.durationSetting("query_timeout", 0)
	c.durationSetting("client_login_timeout", 60)
	c.durationSetting("client_idle_timeout", 0)
	c.durationSetting("idle_transaction_timeout", 0)
	c.add("client_write_timeout", tomlString("1m"), "mux only (PgBouncer has no such limit); mux default")
	c.add("shutdown_timeout", tomlString("30s"),
		"mux only: PgBouncer's shutdown waits for clients without a time limit; mux default")
	c.add("handover_socket", tomlString(""), "mux only (rolling restarts; replaces PgBouncer's online restart with -R); mux default")
}

func (c *converter) administration() {
	c.section("Administration")
	for _, key := range []string{"admin_users", "stats_users"} {
		raw, kv, ok := c.value(key, "")
		users := []string{}
		for _, u := range splitList(raw) {
			if p := nameProblem(u); p != "" {
				c.note("%s (%s): user %q left out: %s", key, c.where(kv), u, p)
				continue
			}
			if !slices.Contains(users, u) {
				users = append(users, u)
			}
		}
		c.add(key, tomlStrings(users), c.origin(kv, ok))
		if key == "admin_users" && c.pgAuthType == "any" {
			c.note("admin_users: with auth_type = any PgBouncer let every user into the admin console; mux admits only admin_users")
		}
	}
	c.add("http_listen", tomlString("127.0.0.1:9127"), "mux only (/metrics, /healthz, /readyz); mux default")
	c.add("status_page", tomlString(config.StatusPageAuto), "mux only (the status page at http_listen's /, loopback only when auto); mux default")
	c.add("host_check_interval", tomlString(config.DefaultHostCheckInterval.String()), "mux only (entries with several hosts); mux default")
	c.add("host_check_timeout", tomlString(config.DefaultHostCheckTimeout.String()), "mux only; mux default")
	c.add("host_retry_max", tomlString(config.DefaultHostRetryMax.String()), "mux only; mux default")
	c.add("max_replica_lag", tomlString(config.DefaultMaxReplicaLag.String()), "mux only (replicas get no reads past it); mux default")
}

func (c *converter) keepalive() {
	c.section("TCP keepalive")
	c.boolSetting("tcp_keepalive", "1")
	c.intDuration("tcp_keepidle", 0, maxSeconds, time.Second)
	c.intDuration("tcp_keepintvl", 0, maxSeconds, time.Second)
	c.intAsIs("tcp_keepcnt", 0, 0, math.MaxInt32)
	c.tcpUserTimeout()
	c.intAsIs("tcp_socket_buffer", 0, 0, 1<<30)
	// PgBouncer's default is 45 s on Linux; mux's is off.
	c.intDuration("tcp_defer_accept", 45, maxSeconds, time.Second)
}

func (c *converter) protocol() {
	c.section("Protocol")
	raw, kv, ok := c.value("ignore_startup_parameters", "")
	params := []string{}
	for _, p := range splitList(raw) {
		if strings.IndexByte(p, 0) < 0 && utf8.ValidString(p) && !slices.Contains(params, p) {
			params = append(params, p)
		}
	}
	c.add("ignore_startup_parameters", tomlStrings(params), c.origin(kv, ok))

	n, kv, ok := c.intSetting("max_packet_size", math.MaxInt32, 0, math.MaxInt64)
	size := config.ByteSize(n)
	comment := c.from(kv, ok)
	switch {
	case size > config.GiB:
		size = config.GiB
		if ok {
			c.noteSetting(kv, ok, "mux's largest max_message_size is 1GB (Postgres's own limit); using 1GB")
		} else {
			comment += "; mux's maximum, which is also Postgres's own limit"
		}
	case size < config.KiB:
		size = config.KiB
		c.noteSetting(kv, ok, "mux's smallest max_message_size is 1kB; using 1kB")
	}
	value := tomlInt(int64(size))
	if size%config.KiB == 0 {
		value = tomlString(size.String())
	}
	c.add("max_message_size", value, comment)
	c.boolSetting("disable_pqexec", "0")
}

func (c *converter) logging() {
	c.section("Logging")
	c.add("log_format", tomlString("text"), "mux only; mux default")
	n, kv, ok := c.intSetting("verbose", 0, 0, math.MaxInt32)
	level := "info"
	if n > 0 {
		level = "debug"
	}
	if n > 1 {
		c.noteSetting(kv, ok, "debug is mux's most verbose log level; PgBouncer's levels above 1 log more")
	}
	c.add("log_level", tomlString(level), c.from(kv, ok))
	c.logSettings()
}

// muxOnlyComments explains mux settings that PgBouncer has no counterpart
// for; others get a generic comment.
var muxOnlyComments = map[string]string{
	"pin_policy":    "mux only; PgBouncer behaves like \"allow\": session state stays on the server for the next client; mux default",
	"listen_fanout": "mux only; PgBouncer passes LISTEN to whichever server the client holds at the time; mux default",
}

// muxOnly writes every other top-level mux setting with mux's default, so
// that the file lists the complete configuration.
func (c *converter) muxOnly() {
	written := map[string]bool{}
	for _, g := range c.d.groups {
		for _, s := range g.lines {
			written[s.key] = true
		}
	}
	defaults := reflect.ValueOf(config.Default()).Elem()
	for i := range defaults.NumField() {
		key, _, _ := strings.Cut(defaults.Type().Field(i).Tag.Get("toml"), ",")
		if key == "" || key == "-" || key == "databases" || key == "users" || key == "peers" || written[key] {
			continue
		}
		value, ok := encodeValue(defaults.Field(i).Interface())
		if !ok {
			continue
		}
		if c.cur.title != "Only in mux" {
			c.section("Only in mux")
		}
		comment, ok := muxOnlyComments[key]
		if !ok {
			comment = "mux only; mux default"
		}
		c.add(key, value, comment)
	}
}

// unsupportedSettings lists the [pgbouncer] settings mux has no equivalent
// for, with the reason given in the note and the values that lose nothing
// (so no note is needed). Matching is case-insensitive; numbers compare
// numerically.
var unsupportedSettings = map[string]struct {
	harmless []string
	reason   string
	secret   bool // do not repeat the value in the note
}{
	"logfile":                {[]string{""}, "mux logs to stderr; redirect it or let your service manager (systemd, Docker) collect it", false},
	"pidfile":                {[]string{""}, "mux writes no PID file; let your service manager track the process", false},
	"user":                   {[]string{""}, "mux does not switch users; start it as the right user (e.g. User= in the systemd unit)", false},
	"syslog":                 {[]string{"0"}, "mux logs to stderr; forward it to syslog with your service manager (e.g. journald)", false},
	"syslog_ident":           {[]string{"pgbouncer"}, "mux logs to stderr; forward it to syslog with your service manager", false},
	"syslog_facility":        {[]string{"daemon"}, "mux logs to stderr; forward it to syslog with your service manager", false},
	"track_extra_parameters": {[]string{"", "intervalstyle"}, "no list is needed: mux carries every setting a client changes with SET or in its startup packet (it reads them back after each transaction that may change them), reported to the client or not", false},
	"conffile":               {nil, "mux reloads the file it was started with", false},
	"service_name":           {[]string{"pgbouncer"}, "Windows service name; not used by mux", false},
	"job_name":               {[]string{"pgbouncer"}, "Windows service name; not used by mux", false},
	"pool_idle_timeout":      {[]string{"0"}, "mux has no equivalent", false},
	"dns_max_ttl":            {[]string{"15"}, "mux does not cache DNS answers; host names are resolved for each new server connection", false},
	"dns_nxdomain_ttl":       {[]string{"15"}, "mux does not cache DNS answers", false},
	"dns_zone_check_period":  {[]string{"0"}, "mux does not cache DNS answers, so there is nothing to recheck", false},
	"resolv_conf":            {[]string{""}, "mux uses the system's resolver configuration", false},
	"query_wait_notify":      {[]string{"0", "5"}, "mux sends no notice to waiting clients", false},
	"login_notify_message":   {[]string{""}, "mux sends no message at login", false},
	"suspend_timeout":        {[]string{"10"}, "mux has no SUSPEND or online restart with -R; rolling restarts use handover_socket, and shutdown_timeout bounds the wait", false},
	"client_tls_ciphers":     {[]string{"default", "secure", "fast", "normal"}, "mux uses Go's TLS cipher suite choice, which is not configurable", false},
	"server_tls_ciphers":     {[]string{"default", "secure", "fast", "normal"}, "mux uses Go's TLS cipher suite choice, which is not configurable", false},
	"client_tls13_ciphers":   {[]string{""}, "Go's TLS 1.3 cipher suites are not configurable", false},
	"server_tls13_ciphers":   {[]string{""}, "Go's TLS 1.3 cipher suites are not configurable", false},
	"client_tls_dheparams":   {[]string{"auto", "none"}, "Go's TLS does not use finite-field DHE", false},
	"pkt_buf":                {[]string{"4096"}, "mux sizes its buffers itself", false},
	"sbuf_loopcnt":           {[]string{"5"}, "mux's event loops read each ready connection once per turn, so a busy one cannot stall the others", false},
	"listen_backlog":         {[]string{"128"}, "Go listens with the largest backlog the system allows (net.core.somaxconn on Linux), which a smaller listen_backlog could only lower", false},
	"so_reuseport":           {[]string{"0"}, "mux uses every CPU core in one process; run one mux instead of several", false},
}

// leftovers notes every setting and section that was not carried over.
func (c *converter) leftovers() {
	for _, key := range c.order {
		if c.used[key] {
			continue
		}
		kv := c.settings[key]
		u, known := unsupportedSettings[key]
		switch {
		case !known:
			c.noteSetting(kv, true, "unknown PgBouncer setting; ignored")
		case harmless(kv.Value, u.harmless):
		case u.secret:
			c.note("%s (%s): %s", key, c.where(kv), u.reason)
		default:
			c.noteSetting(kv, true, u.reason)
		}
	}
	names := make([]string, 0, len(c.ini.Sections))
	for name := range c.ini.Sections {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		entries := c.ini.Sections[name]
		switch name {
		case "pgbouncer", "databases", "users", "peers":
		default:
			c.note("[%s] (%d entries): unknown section; ignored", name, len(entries))
		}
	}
}

// ---------------------------------------------------------------------------
// [databases]
// ---------------------------------------------------------------------------

func (c *converter) render() []byte {
	c.d.header = []string{
		fmt.Sprintf("generated by mux import-pgbouncer from %s on %s", displayName(c.ini.Name), now().UTC().Format("2006-01-02")),
		"",
		"Every setting holds PgBouncer's effective value: the one in the ini file, or",
		"PgBouncer's default (as of PgBouncer 1.25) where the file has none. mux's own",
		"defaults differ in places. Settings only mux has keep mux's defaults.",
		"config.example.toml in the mux sources documents every setting.",
		"Check the result with: mux -check-config FILE",
	}
	if len(c.notes) > 0 {
		c.d.header = append(c.d.header, "")
		for _, n := range c.notes {
			c.d.header = append(c.d.header, "NOT CARRIED OVER: "+n)
		}
	}
	return c.d.render()
}
