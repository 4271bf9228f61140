package pgbouncerconf

// The [databases] and [users] sections.

import (
	"fmt"
	"math"
	"strings"
	"unicode/utf8"

	"github.com/muxpg/mux/auth"
	"github.com/muxpg/mux/config"
)

// dbParamReasons explains the [databases] connection parameters mux has no
// equivalent for.
var dbParamReasons = map[string]string{
	"load_balance_hosts":   "it matters only with several hosts in host=",
	"target_session_attrs": "PgBouncer ignores it; mux's own target_session_attrs (see README) routes by role",
}

func (c *converter) databases() {
	// Later definitions replace earlier ones, as in PgBouncer; the first
	// keeps its position.
	var names []string
	defs := map[string]KV{}
	for _, kv := range c.ini.Sections["databases"] {
		if _, seen := defs[kv.Key]; !seen {
			names = append(names, kv.Key)
		}
		defs[kv.Key] = kv
	}
	c.section("Databases")
	c.databaseDefs = defs
	count := 0
	for _, name := range names {
		if c.database(name, defs[name]) {
			count++
		}
	}
	if count == 0 {
		c.note("[databases]: no database was carried over, and mux needs at least one; added a wildcard entry for 127.0.0.1:5432, so check it")
		c.d.groups = append(c.d.groups, &group{
			table:   []string{"databases", config.WildcardDatabase},
			comment: []string{"Added by the import: PgBouncer defined no usable database. Check host and port."},
			lines: []setting{
				{key: "host", value: tomlString(config.DefaultHost)},
				{key: "port", value: tomlInt(config.DefaultPort)},
			},
		})
	}
}

// dbEntry is one [databases] entry while it is converted.
type dbEntry struct {
	name, label string
	kv          KV
	params      []connParam
	p           map[string]string // params by key
	host        string
	g           *group
	size        int64 // the entry's pool size, for min_pool_size's cap
}

func (e *dbEntry) add(key, value, comment string) {
	e.g.lines = append(e.g.lines, setting{key: key, value: value, comment: comment})
}

// multiHosted reports whether host= lists several hosts (then ports and
// load_balance_hosts are carried by multiHost).
func (e *dbEntry) multiHosted() bool { return strings.Contains(e.host, ",") }

// database converts one [databases] entry and reports whether it was kept.
func (c *converter) database(name string, kv KV) bool {
	e := &dbEntry{name: name, kv: kv, label: fmt.Sprintf("databases.%s (%s)", tomlKey(name), c.where(kv))}
	e.g = &group{table: []string{"databases", name}, comment: []string{fmt.Sprintf("from [databases] %s", c.where(kv))}}
	// Each step notes or fails and returns false when the entry is left out.
	if !c.dbName(e) || !c.dbParams(e) || !c.dbHost(e) || !c.dbPort(e) || !c.dbCredentials(e) || !c.dbPool(e) {
		return false
	}
	c.dbOtherParams(e)
	c.d.groups = append(c.d.groups, e.g)
	return true
}

// dbName leaves out names mux cannot take or keeps for its admin console.
func (c *converter) dbName(e *dbEntry) bool {
	if p := nameProblem(e.name); p != "" {
		c.note("%s: left out: %s", e.label, p)
		return false
	}
	if e.name == "pgbouncer" || e.name == "mux" {
		c.note("%s: left out: the name is mux's admin console", e.label)
		return false
	}
	return true
}

// dbParams parses the connection string.
func (c *converter) dbParams(e *dbEntry) bool {
	params, err := parseConnString(e.kv.Value)
	if err != nil {
		c.fail(e.kv, "connection string: %v", err)
		return false
	}
	e.params = params
	e.p = map[string]string{}
	for _, cp := range params {
		e.p[cp.key] = cp.value
	}
	for _, cp := range params {
		if !utf8.ValidString(cp.value) {
			c.fail(e.kv, "%s: value is not valid UTF-8", cp.key)
			return false
		}
	}
	return true
}

// dbHost carries host=, or unix_socket_dir where there is none.
func (c *converter) dbHost(e *dbEntry) bool {
	host, hasHost := e.p["host"]
	e.host = host
	if strings.IndexByte(host, 0) >= 0 {
		c.fail(e.kv, "host: value contains a NUL byte")
		return false
	}
	switch {
	case !hasHost && (c.socketDir == "" || strings.HasPrefix(c.socketDir, "@")):
		c.note("%s: left out: it has no host, so PgBouncer connects through the Unix socket in unix_socket_dir, and %q cannot be used by mux", e.label, c.socketDir)
		return false
	case !hasHost:
		e.add("host", tomlString(c.socketDir), "no host: the Unix socket in unix_socket_dir")
	case strings.HasPrefix(host, "@"):
		c.note("%s: left out: mux cannot connect to the abstract-namespace socket %q", e.label, host)
		return false
	case e.multiHosted():
		return c.multiHost(e.kv, host, e.p, e.add)
	default:
		e.add("host", tomlString(host), "")
	}
	return true
}

// dbPort carries port= for a single host.
func (c *converter) dbPort(e *dbEntry) bool {
	if e.multiHosted() {
		return true // in the hosts list
	}
	port := int64(config.DefaultPort)
	if s, ok := e.p["port"]; ok {
		n, err := parseInt(s)
		if err != nil || n < 1 || n > 65535 {
			c.fail(e.kv, "port: %q is not a port number", s)
			return false
		}
		port = n
	}
	e.add("port", tomlInt(port), "")
	return true
}

// dbCredentials carries dbname=, user= and the password, which for a forced
// user PgBouncer takes from the auth_file.
func (c *converter) dbCredentials(e *dbEntry) bool {
	if s, ok := e.p["dbname"]; ok {
		if prob := nameProblem(s); prob != "" {
			c.fail(e.kv, "dbname: %s", prob)
			return false
		}
		e.add("dbname", tomlString(s), "")
	}
	user, forced := e.p["user"]
	if forced {
		if prob := nameProblem(user); prob != "" {
			c.fail(e.kv, "user: %s", prob)
			return false
		}
		e.add("user", tomlString(user), "")
	}
	password, hasPassword := e.p["password"]
	comment := ""
	if !hasPassword && forced {
		password, hasPassword = c.secrets[user]
		comment = user + "'s password from the auth_file"
	}
	if hasPassword {
		if prob := secretProblem(password); prob != "" {
			c.note("%s: password not carried over: %s", e.label, prob)
		} else {
			e.add("password", tomlString(password), comment)
		}
	}
	return true
}

// dbPool carries pool_mode, pool_size and min_pool_size, capping the last at
// the pool size as PgBouncer does.
func (c *converter) dbPool(e *dbEntry) bool {
	if s, ok := e.p["pool_mode"]; ok {
		mode, valid := poolMode(s)
		if !valid {
			c.fail(e.kv, "pool_mode: unknown pool mode %q", s)
			return false
		}
		e.add("pool_mode", tomlString(mode), "")
	}
	e.size = c.defaultPoolSize
	if s, ok := e.p["pool_size"]; ok {
		n, err := parseInt(s)
		if err != nil || n > math.MaxInt32 {
			c.fail(e.kv, "pool_size: %q is not a pool size", s)
			return false
		}
		switch {
		case n == 0:
			c.note("%s: pool_size=0: PgBouncer opens no server connection for it; mux cannot express that and uses default_pool_size", e.label)
		case n > 0:
			e.size = n
			e.add("pool_size", tomlInt(n), "")
		}
	}
	return c.dbMinPoolSize(e)
}

func (c *converter) dbMinPoolSize(e *dbEntry) bool {
	s, ok := e.p["min_pool_size"]
	if !ok {
		if c.minPoolSize > e.size {
			e.add("min_pool_size", tomlInt(e.size), "the global min_pool_size, capped at the pool size as PgBouncer does")
		}
		return true
	}
	n, err := parseInt(s)
	if err != nil || n > math.MaxInt32 {
		c.fail(e.kv, "min_pool_size: %q is not a pool size", s)
		return false
	}
	if n > e.size {
		e.add("min_pool_size", tomlInt(e.size), fmt.Sprintf("capped at the pool size as PgBouncer does (was %d)", n))
	} else if n >= 0 {
		e.add("min_pool_size", tomlInt(n), "")
	}
	return true
}

// dbOtherParams carries, or notes, the parameters the steps before did not.
func (c *converter) dbOtherParams(e *dbEntry) {
	for _, cp := range e.params {
		if !c.dbOtherParam(e, cp) {
			reason, ok := dbParamReasons[cp.key]
			if !ok {
				reason = "unknown connection parameter; ignored"
			}
			c.note("%s: %s=%q: %s", e.label, cp.key, cp.value, reason)
		}
	}
}

// dbOtherParam reports whether cp was dealt with.
func (c *converter) dbOtherParam(e *dbEntry, cp connParam) bool {
	switch cp.key {
	case "host", "port", "dbname", "user", "password", "pool_mode", "pool_size", "min_pool_size":
		return true
	case "auth_query", "auth_dbname":
		e.add(cp.key, tomlString(cp.value), "")
		return true
	case "application_name", "client_encoding", "datestyle", "timezone":
		e.add(cp.key, tomlString(cp.value), "a startup parameter of the entry's servers")
		return true
	case "load_balance_hosts":
		if e.multiHosted() {
			return true // in multiHost
		}
	case "auth_user":
		c.dbAuthUsers = append(c.dbAuthUsers, dbAuthUser{table: e.g, user: cp.value, label: e.label})
		return true
	}
	if s, ok := c.limitParam(dbLimitKeys, e.kv, e.label, cp); ok {
		if s != nil {
			e.g.lines = append(e.g.lines, *s)
		}
		return true
	}
	return c.dbReuseParam(e.kv, cp, e.add) // convert_reuse.go
}

// ---------------------------------------------------------------------------
// Users: the auth_file and [users]
// ---------------------------------------------------------------------------

// userSettings is what the [users] section says, by user name.
type userSettings struct {
	names    []string // auth_file users, then [users]-only ones, in order
	seen     map[string]bool
	modes    map[string]string
	limits   map[string][]setting // limitParam's
	timeouts map[string][]setting // convert_reuse.go
	where    map[string]KV
}

func (c *converter) users() {
	u := &userSettings{seen: map[string]bool{}, modes: map[string]string{},
		limits: map[string][]setting{}, timeouts: map[string][]setting{}, where: map[string]KV{}}
	for _, e := range c.auth {
		u.addName(e.User)
	}
	for _, kv := range c.ini.Sections["users"] {
		c.userEntry(u, kv)
	}

	c.section("Users")
	c.kept = map[string]bool{}
	kept := 0
	for _, name := range u.names {
		if c.user(u, name) {
			c.kept[name] = true
			kept++
		}
	}
	if kept == 0 {
		c.noUsers()
	}
}

func (u *userSettings) addName(name string) {
	if !u.seen[name] {
		u.seen[name] = true
		u.names = append(u.names, name)
	}
}

// userEntry reads one [users] line; a later line for a user replaces an
// earlier one.
func (c *converter) userEntry(u *userSettings, kv KV) {
	label := fmt.Sprintf("users.%s (%s)", tomlKey(kv.Key), c.where(kv))
	params, err := parseConnString(kv.Value)
	if err != nil {
		c.fail(kv, "user settings: %v", err)
		return
	}
	delete(u.modes, kv.Key)
	delete(u.limits, kv.Key)
	delete(u.timeouts, kv.Key)
	for _, cp := range params {
		if !c.userParam(u, kv, label, cp) {
			// Every [users] parameter of PgBouncer 1.25 is carried.
			c.note("%s: %s=%q: unknown user parameter; ignored", label, cp.key, cp.value)
		}
	}
	u.where[kv.Key] = kv
	u.addName(kv.Key)
}

// userParam reports whether cp was dealt with.
func (c *converter) userParam(u *userSettings, kv KV, label string, cp connParam) bool {
	if line, carried, ok := c.userTimeout(kv, cp); ok {
		if carried {
			u.timeouts[kv.Key] = append(u.timeouts[kv.Key], line)
		}
		return true
	}
	if cp.key == "pool_mode" {
		mode, valid := poolMode(cp.value)
		if !valid {
			c.fail(kv, "pool_mode: unknown pool mode %q", cp.value)
		}
		u.modes[kv.Key] = mode
		return true
	}
	if s, ok := c.limitParam(userLimitKeys, kv, label, cp); ok {
		if s != nil {
			s.comment = strings.TrimPrefix(s.comment+"; ", "; ") + "from [users] " + c.where(kv)
			u.limits[kv.Key] = append(u.limits[kv.Key], *s)
		}
		return true
	}
	return false
}

// user writes one user's table and reports whether it was kept.
func (c *converter) user(u *userSettings, name string) bool {
	secret, inAuth := c.secrets[name]
	label := fmt.Sprintf("user %q", name)
	if kv, ok := u.where[name]; ok && !inAuth {
		label = fmt.Sprintf("users.%s (%s)", tomlKey(name), c.where(kv))
	}
	if !c.userUsable(label, name, secret, inAuth) {
		return false
	}
	g := &group{table: []string{"users", name}}
	src := "from the auth_file"
	if !inAuth {
		src = "from [users] " + c.where(u.where[name])
	}
	g.comment = []string{src}
	g.lines = append(g.lines, setting{key: "password", value: tomlString(secret)})
	if mode, ok := u.modes[name]; ok {
		g.lines = append(g.lines, setting{key: "pool_mode", value: tomlString(mode), comment: "from [users] " + c.where(u.where[name])})
	}
	g.lines = append(g.lines, u.limits[name]...)
	g.lines = append(g.lines, u.timeouts[name]...)
	c.d.groups = append(c.d.groups, g)
	return true
}

// userUsable notes why a user is left out: a bad name, or no secret mux can
// log it in with.
func (c *converter) userUsable(label, name, secret string, inAuth bool) bool {
	if p := nameProblem(name); p != "" {
		c.note("%s: left out: %s", label, p)
		return false
	}
	switch {
	case !inAuth && !c.emptyPasswordOK():
		if c.settings["auth_user"].Value != "" {
			c.note("%s: left out: not in the auth_file, so it has no password; it can still log in through auth_query, without its [users] settings", label)
		} else {
			c.note("%s: left out: not in the auth_file, so it has no password", label)
		}
		return false
	case secret == "" && !c.emptyPasswordOK():
		c.note("%s: left out: empty password in the auth_file, which mux accepts only with auth_type = trust or ldap", label)
		return false
	case secret != "":
		if p := secretProblem(secret); p != "" {
			c.note("%s: left out: %s", label, p)
			return false
		}
		if s, _ := auth.ParseSecret(secret); s.Kind == auth.SecretMD5 && c.authType == config.AuthSCRAM {
			c.note("%s: left out: its md5 secret cannot be used with auth_type = scram-sha-256 (PgBouncer could not log it in either); store its plain password or SCRAM secret", label)
			return false
		}
	}
	return true
}

// noUsers explains an empty [users].
func (c *converter) noUsers() {
	c.cur.comment = []string{"(none)"}
	switch {
	case c.settings["auth_user"].Value != "":
		// auth_query finds the users (or auth_user's note explains why not).
	case c.auth == nil:
		c.note("auth_file: no auth_file was read, so [users] is empty and no client can log in until users are added")
	default:
		c.note("auth_file: no user was carried over, so no client can log in until users are added")
	}
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------
