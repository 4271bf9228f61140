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

// database converts one [databases] entry and reports whether it was kept.
func (c *converter) database(name string, kv KV) bool {
	label := fmt.Sprintf("databases.%s (%s)", tomlKey(name), c.where(kv))
	if p := nameProblem(name); p != "" {
		c.note("%s: left out: %s", label, p)
		return false
	}
	if name == "pgbouncer" || name == "mux" {
		c.note("%s: left out: the name is mux's admin console", label)
		return false
	}
	params, err := parseConnString(kv.Value)
	if err != nil {
		c.fail(kv, "connection string: %v", err)
		return false
	}
	p := map[string]string{}
	for _, cp := range params {
		p[cp.key] = cp.value
	}
	for _, cp := range params {
		if !utf8.ValidString(cp.value) {
			c.fail(kv, "%s: value is not valid UTF-8", cp.key)
			return false
		}
	}
	g := &group{table: []string{"databases", name}}
	g.comment = []string{fmt.Sprintf("from [databases] %s", c.where(kv))}
	add := func(key, value, comment string) {
		g.lines = append(g.lines, setting{key: key, value: value, comment: comment})
	}

	host, hasHost := p["host"]
	if strings.IndexByte(host, 0) >= 0 {
		c.fail(kv, "host: value contains a NUL byte")
		return false
	}
	switch {
	case !hasHost && (c.socketDir == "" || strings.HasPrefix(c.socketDir, "@")):
		c.note("%s: left out: it has no host, so PgBouncer connects through the Unix socket in unix_socket_dir, and %q cannot be used by mux", label, c.socketDir)
		return false
	case !hasHost:
		add("host", tomlString(c.socketDir), "no host: the Unix socket in unix_socket_dir")
	case strings.HasPrefix(host, "@"):
		c.note("%s: left out: mux cannot connect to the abstract-namespace socket %q", label, host)
		return false
	case strings.Contains(host, ","):
		if !c.multiHost(kv, host, p, add) {
			return false
		}
	default:
		add("host", tomlString(host), "")
	}

	port := int64(config.DefaultPort)
	if s, ok := p["port"]; strings.Contains(host, ",") {
		// In the hosts list.
	} else if ok {
		n, err := parseInt(s)
		if err != nil || n < 1 || n > 65535 {
			c.fail(kv, "port: %q is not a port number", s)
			return false
		}
		port = n
	}
	if !strings.Contains(host, ",") {
		add("port", tomlInt(port), "")
	}

	if s, ok := p["dbname"]; ok {
		if prob := nameProblem(s); prob != "" {
			c.fail(kv, "dbname: %s", prob)
			return false
		}
		add("dbname", tomlString(s), "")
	}
	user, forced := p["user"]
	if forced {
		if prob := nameProblem(user); prob != "" {
			c.fail(kv, "user: %s", prob)
			return false
		}
		add("user", tomlString(user), "")
	}
	password, hasPassword := p["password"]
	comment := ""
	if !hasPassword && forced {
		// PgBouncer takes the forced user's password from the auth_file.
		password, hasPassword = c.secrets[user]
		comment = user + "'s password from the auth_file"
	}
	if hasPassword {
		if prob := secretProblem(password); prob != "" {
			c.note("%s: password not carried over: %s", label, prob)
		} else {
			add("password", tomlString(password), comment)
		}
	}
	if s, ok := p["pool_mode"]; ok {
		mode, valid := poolMode(s)
		if !valid {
			c.fail(kv, "pool_mode: unknown pool mode %q", s)
			return false
		}
		add("pool_mode", tomlString(mode), "")
	}
	size := c.defaultPoolSize
	if s, ok := p["pool_size"]; ok {
		n, err := parseInt(s)
		if err != nil || n > math.MaxInt32 {
			c.fail(kv, "pool_size: %q is not a pool size", s)
			return false
		}
		switch {
		case n == 0:
			c.note("%s: pool_size=0: PgBouncer opens no server connection for it; mux cannot express that and uses default_pool_size", label)
		case n > 0:
			size = n
			add("pool_size", tomlInt(n), "")
		}
	}
	if s, ok := p["min_pool_size"]; ok {
		n, err := parseInt(s)
		if err != nil || n > math.MaxInt32 {
			c.fail(kv, "min_pool_size: %q is not a pool size", s)
			return false
		}
		if n > size {
			add("min_pool_size", tomlInt(size), fmt.Sprintf("capped at the pool size as PgBouncer does (was %d)", n))
		} else if n >= 0 {
			add("min_pool_size", tomlInt(n), "")
		}
	} else if c.minPoolSize > size {
		add("min_pool_size", tomlInt(size), "the global min_pool_size, capped at the pool size as PgBouncer does")
	}
	for _, cp := range params {
		switch cp.key {
		case "host", "port", "dbname", "user", "password", "pool_mode", "pool_size", "min_pool_size":
			continue
		case "auth_query", "auth_dbname":
			add(cp.key, tomlString(cp.value), "")
			continue
		case "application_name", "client_encoding", "datestyle", "timezone":
			add(cp.key, tomlString(cp.value), "a startup parameter of the entry's servers")
			continue
		case "load_balance_hosts":
			if strings.Contains(host, ",") {
				continue // in multiHost
			}
		case "auth_user":
			c.dbAuthUsers = append(c.dbAuthUsers, dbAuthUser{table: g, user: cp.value, label: label})
			continue
		}
		if s, ok := c.limitParam(dbLimitKeys, kv, label, cp); ok {
			if s != nil {
				g.lines = append(g.lines, *s)
			}
			continue
		}
		if c.dbReuseParam(kv, cp, add) { // convert_reuse.go
			continue
		}
		reason, ok := dbParamReasons[cp.key]
		if !ok {
			reason = "unknown connection parameter; ignored"
		}
		c.note("%s: %s=%q: %s", label, cp.key, cp.value, reason)
	}
	c.d.groups = append(c.d.groups, g)
	return true
}

// ---------------------------------------------------------------------------
// Users: the auth_file and [users]
// ---------------------------------------------------------------------------

// userParamReasons explains the [users] parameters mux has no equivalent for.
var userParamReasons = map[string]string{}

func (c *converter) users() {
	var names []string
	seen := map[string]bool{}
	for _, e := range c.auth {
		if !seen[e.User] {
			seen[e.User] = true
			names = append(names, e.User)
		}
	}
	modes := map[string]string{}
	limits := map[string][]setting{}   // limitParam's, by user
	timeouts := map[string][]setting{} // convert_reuse.go
	where := map[string]KV{}
	for _, kv := range c.ini.Sections["users"] {
		label := fmt.Sprintf("users.%s (%s)", tomlKey(kv.Key), c.where(kv))
		params, err := parseConnString(kv.Value)
		if err != nil {
			c.fail(kv, "user settings: %v", err)
			continue
		}
		delete(modes, kv.Key)
		delete(limits, kv.Key)
		delete(timeouts, kv.Key)
		for _, cp := range params {
			if line, carried, ok := c.userTimeout(kv, cp); ok {
				if carried {
					timeouts[kv.Key] = append(timeouts[kv.Key], line)
				}
				continue
			}
			if cp.key == "pool_mode" {
				mode, valid := poolMode(cp.value)
				if !valid {
					c.fail(kv, "pool_mode: unknown pool mode %q", cp.value)
				}
				modes[kv.Key] = mode
				continue
			}
			if s, ok := c.limitParam(userLimitKeys, kv, label, cp); ok {
				if s != nil {
					s.comment = strings.TrimPrefix(s.comment+"; ", "; ") + "from [users] " + c.where(kv)
					limits[kv.Key] = append(limits[kv.Key], *s)
				}
				continue
			}
			reason, ok := userParamReasons[cp.key]
			if !ok {
				reason = "unknown user parameter; ignored"
			}
			c.note("%s: %s=%q: %s", label, cp.key, cp.value, reason)
		}
		where[kv.Key] = kv
		if !seen[kv.Key] {
			seen[kv.Key] = true
			names = append(names, kv.Key)
		}
	}

	c.section("Users")
	c.kept = map[string]bool{}
	kept := 0
	for _, name := range names {
		secret, inAuth := c.secrets[name]
		label := fmt.Sprintf("user %q", name)
		if kv, ok := where[name]; ok && !inAuth {
			label = fmt.Sprintf("users.%s (%s)", tomlKey(name), c.where(kv))
		}
		if p := nameProblem(name); p != "" {
			c.note("%s: left out: %s", label, p)
			continue
		}
		switch {
		case !inAuth && !c.emptyPasswordOK():
			if c.settings["auth_user"].Value != "" {
				c.note("%s: left out: not in the auth_file, so it has no password; it can still log in through auth_query, without its [users] settings", label)
			} else {
				c.note("%s: left out: not in the auth_file, so it has no password", label)
			}
			continue
		case secret == "" && !c.emptyPasswordOK():
			c.note("%s: left out: empty password in the auth_file, which mux accepts only with auth_type = trust or ldap", label)
			continue
		case secret != "":
			if p := secretProblem(secret); p != "" {
				c.note("%s: left out: %s", label, p)
				continue
			}
			if s, _ := auth.ParseSecret(secret); s.Kind == auth.SecretMD5 && c.authType == config.AuthSCRAM {
				c.note("%s: left out: its md5 secret cannot be used with auth_type = scram-sha-256 (PgBouncer could not log it in either); store its plain password or SCRAM secret", label)
				continue
			}
		}
		g := &group{table: []string{"users", name}}
		src := "from the auth_file"
		if !inAuth {
			src = "from [users] " + c.where(where[name])
		}
		g.comment = []string{src}
		g.lines = append(g.lines, setting{key: "password", value: tomlString(secret)})
		if mode, ok := modes[name]; ok {
			g.lines = append(g.lines, setting{key: "pool_mode", value: tomlString(mode), comment: "from [users] " + c.where(where[name])})
		}
		g.lines = append(g.lines, limits[name]...)
		g.lines = append(g.lines, timeouts[name]...)
		c.d.groups = append(c.d.groups, g)
		c.kept[name] = true
		kept++
	}
	if kept == 0 {
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
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------
