package admin

import (
	"cmp"
	"fmt"
	"net"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
)

// The SHOW results, column for column PgBouncer 1.18's.
var (
	showPoolsCols = columns("database:text user:text cl_active:int4 cl_waiting:int4 cl_active_cancel_req:int4 " +
		"cl_waiting_cancel_req:int4 sv_active:int4 sv_active_cancel:int4 sv_being_canceled:int4 sv_idle:int4 " +
		"sv_used:int4 sv_tested:int4 sv_login:int4 maxwait:int4 maxwait_us:int4 pool_mode:text")
	showStatsCols = columns("database:text total_xact_count:numeric total_query_count:numeric total_received:numeric " +
		"total_sent:numeric total_xact_time:numeric total_query_time:numeric total_wait_time:numeric " +
		"avg_xact_count:numeric avg_query_count:numeric avg_recv:numeric avg_sent:numeric avg_xact_time:numeric " +
		"avg_query_time:numeric avg_wait_time:numeric")
	showStatsPartCols = columns("database:text xact_count:numeric query_count:numeric bytes_received:numeric " +
		"bytes_sent:numeric xact_time:numeric query_time:numeric wait_time:numeric")
	showTotalsCols  = columns("name:text value:numeric")
	showSocketsCols = columns("type:text user:text database:text state:text addr:text port:int4 local_addr:text " +
		"local_port:int4 connect_time:text request_time:text wait:int4 wait_us:int4 close_needed:int4 ptr:text " +
		"link:text remote_pid:int4 tls:text application_name:text")
	// SHOW CLIENTS is PgBouncer's socket list plus mux's pin_reason at the
	// end (why a transaction-mode client keeps its server); tools reading
	// columns by name are unaffected.
	showClientsCols = columns("type:text user:text database:text state:text addr:text port:int4 local_addr:text " +
		"local_port:int4 connect_time:text request_time:text wait:int4 wait_us:int4 close_needed:int4 ptr:text " +
		"link:text remote_pid:int4 tls:text application_name:text pin_reason:text")
	showDatabasesCols = columns("name:text host:text port:int4 database:text force_user:text pool_size:int4 " +
		"min_pool_size:int4 reserve_pool:int4 pool_mode:text max_connections:int4 current_connections:int4 " +
		"paused:int4 disabled:int4 max_client_connections:int4 current_client_connections:int4")
	// SHOW DATABASES and SHOW USERS add, after 1.18's columns, the limits
	// and counts PgBouncer 1.25 shows (in its own order there).
	showUsersCols = columns("name:text pool_mode:text pool_size:text reserve_pool_size:text max_user_connections:int4 " +
		"current_connections:int4 max_user_client_connections:int4 current_client_connections:int4")
	showConfigCols   = columns("key:text value:text default:text changeable:text")
	showListsCols    = columns("list:text items:int4")
	showMemCols      = columns("name:text size:int4 used:int4 free:int4 memtotal:int4")
	showVersionCols  = columns("version:text")
	showStateCols    = columns("key:text value:text")
	showDNSHostsCols = columns("hostname:text ttl:int8 addrs:text")
	showDNSZonesCols = columns("zonename:text serial:int8 count:int4")
)

// consoleHelp is SHOW HELP's text, sent as a NOTICE's detail like
// PgBouncer's.
const consoleHelp = `
	SHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION
	SHOW LISTS|MEM|STATE|HOSTS|DNS_HOSTS|DNS_ZONES
	SHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS
	SET key = arg
	RELOAD
	PAUSE [<db>]
	RESUME [<db>]
	DISABLE <db>
	ENABLE <db>
	RECONNECT [<db>]
	KILL [<db>]
	KILL_CLIENT <client_id>
	SHUTDOWN
	SHUTDOWN WAIT_FOR_SERVERS|WAIT_FOR_CLIENTS
	WAIT_CLOSE [<db>]`

// show answers SHOW what; nil for an unknown subject.
func (con *Console) show(what string) ([]byte, *wire.Error) {
	switch what {
	case "HELP":
		out := wire.AppendMessage(nil, &pgproto3.NoticeResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE",
			Code: "00000", Message: "Console usage", Detail: consoleHelp})
		return wire.AppendMessage(out, &pgproto3.CommandComplete{CommandTag: []byte("SHOW")}), nil
	case "VERSION":
		return con.showVersion(), nil
	case "POOLS":
		return showPools(con.t.Pools()), nil
	case "STATS":
		return con.showStats(true, true), nil
	case "STATS_TOTALS":
		return con.showStats(true, false), nil
	case "STATS_AVERAGES":
		return con.showStats(false, true), nil
	case "TOTALS":
		return con.showTotals(), nil
	case "CLIENTS":
		return con.showClients(), nil
	case "SERVERS":
		return showServers(con.t.Pools(), con.t.Clients()), nil
	case "DATABASES":
		return con.showDatabases(), nil
	case "USERS":
		return con.showUsers(), nil
	case "CONFIG":
		return showConfig(con.t.Config()), nil
	case "LISTS":
		return con.showLists(), nil
	case "MEM":
		return con.showMem(), nil
	case "HOSTS":
		return showHosts(con.t.Hosts()), nil
	case "DNS_HOSTS":
		return newResult(showDNSHostsCols).finish(), nil
	case "DNS_ZONES":
		return newResult(showDNSZonesCols).finish(), nil
	case "STATE":
		return con.showState(), nil
	case "FDS":
		return showFDs(con.t.FDs()), nil
	case "SOCKETS", "ACTIVE_SOCKETS":
		return nil, wire.Errorf(wire.CodeFeatureNotSupported, "SHOW %s is not supported by mux", what)
	}
	return nil, nil
}

func (con *Console) showVersion() []byte {
	r := newResult(showVersionCols)
	v := "PgBouncer " + PgBouncerVersion + " (mux"
	if mv := con.t.Version(); mv != "" {
		v += " " + mv
	}
	r.row(v + ")")
	return r.finish()
}

// showState answers SHOW STATE as PgBouncer does: whether the pooler is
// active, paused (PAUSE or KILL without a database) or suspended (never:
// mux has no SUSPEND), one key per row.
func (con *Console) showState() []byte {
	paused, _ := con.t.Held("")
	r := newResult(showStateCols)
	r.row("active", yesNo(!paused))
	r.row("paused", yesNo(paused))
	r.row("suspended", "no")
	return r.finish()
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// splitWait gives PgBouncer's seconds and microseconds columns.
func splitWait(d time.Duration) (int64, int64) {
	us := d.Microseconds()
	return us / 1e6, us % 1e6
}

func showPools(pools []Pool) []byte {
	r := newResult(showPoolsCols)
	for _, pi := range pools {
		active, idle := 0, 0
		for _, si := range pi.Servers {
			if si.State == "idle" {
				idle++
			} else {
				active++
			}
		}
		login := max(pi.Total-len(pi.Servers), 0)
		sec, us := splitWait(pi.MaxWait)
		// PgBouncer counts a logged-in client without a server as active.
		r.row(pi.Database, pi.User, pi.ClientsActive+pi.ClientsIdle, pi.ClientsWaiting, 0, 0,
			active, 0, 0, idle, 0, 0, login, sec, us, pi.PoolMode)
	}
	return r.finish()
}

// sqlTime formats a time as PgBouncer does.
func sqlTime(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 MST") }

// addrPort splits an address for the addr/port columns; Unix sockets show
// as "unix" with the port in the socket's name, as in PgBouncer.
func addrPort(a net.Addr, sock net.Addr) (string, int) {
	switch a := a.(type) {
	case nil:
		return "", 0
	case *net.TCPAddr:
		return a.IP.String(), a.Port
	case *net.UnixAddr:
		if u, ok := sock.(*net.UnixAddr); ok {
			return "unix", socketPort(u.Name)
		}
		return "unix", socketPort(a.Name)
	}
	return splitAddr(a.String())
}

func splitAddr(s string) (string, int) {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return "unix", socketPort(s)
	}
	n, _ := strconv.Atoi(port)
	return host, n
}

// socketPort reads the port from a Postgres-style socket path
// (…/.s.PGSQL.6432).
func socketPort(path string) int {
	i := strings.LastIndexByte(path, '.')
	n, _ := strconv.Atoi(path[i+1:])
	return n
}

func ptr(id uint64) string { return "0x" + strconv.FormatUint(id, 16) }

// clientRow is one line of SHOW CLIENTS, from a regular or console client.
type clientRow struct {
	id                       uint64
	user, database, state    string
	remote, local            net.Addr
	connected, lastRequest   time.Time
	link, appName, tlsStatus string
	pinReason                string
}

func tlsStatus(on bool) string {
	if on {
		return "TLS"
	}
	return ""
}

// clientRows returns the regular clients and the console's, by ID.
func (con *Console) clientRows() []clientRow {
	var rows []clientRow
	for _, ci := range con.t.Clients() {
		cr := clientRow{id: ci.ID, user: ci.User, database: ci.Database, state: "active",
			remote: ci.Remote, local: ci.Local, connected: ci.ConnectTime, lastRequest: ci.RequestTime,
			appName: ci.ApplicationName, pinReason: ci.PinReason, tlsStatus: tlsStatus(ci.TLS)}
		if ci.Waiting {
			cr.state = "waiting" // since when is not recorded: wait stays 0
		}
		if ci.ServerID != 0 {
			cr.link = ptr(ci.ServerID)
		}
		rows = append(rows, cr)
	}
	con.mu.Lock()
	for s := range con.sessions {
		pr := &s.peer
		rows = append(rows, clientRow{id: pr.ID, user: pr.User, database: pr.Database, state: "active",
			remote: pr.Conn.RemoteAddr(), local: pr.Conn.LocalAddr(), connected: pr.Connected,
			lastRequest: time.Unix(0, s.lastReq.Load()), appName: pr.AppName, tlsStatus: tlsStatus(pr.TLS)})
	}
	con.mu.Unlock()
	slices.SortFunc(rows, func(a, b clientRow) int { return cmp.Compare(a.id, b.id) })
	return rows
}

func (con *Console) showClients() []byte {
	r := newResult(showClientsCols)
	for _, cr := range con.clientRows() {
		addr, port := addrPort(cr.remote, cr.local)
		laddr, lport := addrPort(cr.local, cr.local)
		req := cr.lastRequest
		if req.IsZero() {
			req = cr.connected
		}
		r.row("C", cr.user, cr.database, cr.state, addr, port, laddr, lport, sqlTime(cr.connected), sqlTime(req),
			0, 0, 0, ptr(cr.id), cr.link, 0, cr.tlsStatus, cr.appName, cr.pinReason)
	}
	return r.finish()
}

func showServers(pools []Pool, clients []Client) []byte {
	owner := map[uint64]uint64{} // server ID → client ID
	for _, ci := range clients {
		if ci.ServerID != 0 {
			owner[ci.ServerID] = ci.ID
		}
	}
	r := newResult(showSocketsCols)
	for _, pi := range pools {
		slices.SortFunc(pi.Servers, func(a, b pool.ServerInfo) int { return cmp.Compare(a.ID, b.ID) })
		for _, si := range pi.Servers {
			addr, port := splitAddr(si.Address)
			if si.Network == "unix" {
				addr, port = "unix", pi.Target.Port
			}
			laddr, lport := splitAddr(si.LocalAddress)
			req := si.LastUsed
			if req.IsZero() {
				req = si.ConnectTime
			}
			link := ""
			if id, ok := owner[si.ID]; ok {
				link = ptr(id)
			}
			r.row("S", pi.Target.User, pi.Database, si.State, addr, port, laddr, lport,
				sqlTime(si.ConnectTime), sqlTime(req), 0, 0, flag(si.CloseNeeded), ptr(si.ID), link, si.BackendPID, "", "")
		}
	}
	return r.finish()
}

// flag shows a boolean as PgBouncer's int4 0 or 1.
func flag(b bool) int {
	if b {
		return 1
	}
	return 0
}

// nullIfEmpty shows "" as NULL, as PgBouncer shows unset values.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

// databaseNames lists cfg's databases and those reached through "*" that
// have servers (conns), sorted.
func databaseNames(cfg *config.Config, conns map[string]int) []string {
	names := make([]string, 0, len(cfg.Databases)+len(conns))
	for name := range cfg.Databases {
		if name != config.WildcardDatabase {
			names = append(names, name)
		}
	}
	for name := range conns {
		if _, ok := cfg.Databases[name]; !ok {
			names = append(names, name) // reached through "*"
		}
	}
	sort.Strings(names)
	return names
}

func (con *Console) showDatabases() []byte {
	cfg := con.t.Config()
	conns := map[string]int{}
	for _, pi := range con.t.Pools() {
		conns[pi.Database] += len(pi.Servers)
	}
	clients := map[string]int{}
	for _, c := range con.t.Clients() {
		clients[c.Database]++
	}
	r := newResult(showDatabasesCols)
	for _, name := range databaseNames(cfg, conns) {
		db, ok := cfg.LookupDatabase(name)
		if !ok {
			continue // a pool left over from a database a reload removed
		}
		raw, explicit := cfg.Databases[name]
		if !explicit {
			raw = cfg.Databases[config.WildcardDatabase]
		}
		paused, disabled := con.t.Held(name)
		r.row(name, db.Host, db.Port, db.DBName, nullIfEmpty(db.User), db.PoolSize, db.MinPoolSize,
			cfg.ReservePoolFor(db, ""), nullIfEmpty(raw.PoolMode), cfg.DBServerLimit(db), conns[name],
			flag(paused), flag(disabled), cfg.DBClientLimit(db), clients[name])
	}
	return r.finish()
}

// showUsers lists users with their pool settings, limits and counts
// (servers by the user they log in as, clients by their own); never
// secrets.
func (con *Console) showUsers() []byte {
	cfg := con.t.Config()
	names := make([]string, 0, len(cfg.Users))
	for name := range cfg.Users {
		names = append(names, name)
	}
	sort.Strings(names)
	servers, clients := map[string]int{}, map[string]int{}
	for _, pi := range con.t.Pools() {
		servers[pi.Target.User] += len(pi.Servers)
	}
	for _, c := range con.t.Clients() {
		clients[c.User]++
	}
	r := newResult(showUsersCols)
	for _, name := range names {
		u := cfg.Users[name]
		size, reserve := "", ""
		if u.PoolSize > 0 {
			size = strconv.Itoa(u.PoolSize)
		}
		if u.ReservePoolSize != nil {
			reserve = strconv.Itoa(*u.ReservePoolSize)
		}
		r.row(name, nullIfEmpty(u.PoolMode), size, reserve, cfg.UserServerLimit(name), servers[name],
			cfg.UserClientLimit(name), clients[name])
	}
	return r.finish()
}

// restartOnlyKeys are the settings RELOAD does not apply.
var restartOnlyKeys = map[string]bool{
	"listen": true, "unix_socket_dir": true, "unix_socket_mode": true,
	"http_listen": true, "status_page": true, "log_format": true, "handover_socket": true,
	"peer_id": true,
}

// showConfig lists the top-level settings of cfg (with passwords
// redacted) next to their defaults.
func showConfig(cfg *config.Config) []byte {
	cur := reflect.ValueOf(cfg.Redacted()).Elem()
	def := reflect.ValueOf(config.Default()).Elem()
	type kv struct{ key, value, def string }
	var list []kv
	var add func(cur, def reflect.Value)
	add = func(cur, def reflect.Value) {
		for i := range cur.NumField() {
			f := cur.Type().Field(i)
			if f.Anonymous && f.Type.Kind() == reflect.Struct {
				add(cur.Field(i), def.Field(i)) // embedded groups of top-level keys
				continue
			}
			key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
			if key == "" || key == "-" || f.Type.Kind() == reflect.Map {
				continue // [databases] and [users] have SHOW DATABASES and USERS
			}
			list = append(list, kv{key, configValue(cur.Field(i)), configValue(def.Field(i))})
		}
	}
	add(cur, def)
	sort.Slice(list, func(i, j int) bool { return list[i].key < list[j].key })
	r := newResult(showConfigCols)
	for _, e := range list {
		changeable := "yes"
		if restartOnlyKeys[e.key] {
			changeable = "no"
		}
		r.row(e.key, e.value, e.def, changeable)
	}
	return r.finish()
}

// configValue formats a setting as it is written in the file, without
// quotes; lists are comma-separated.
func configValue(v reflect.Value) string {
	if s, ok := v.Interface().(fmt.Stringer); ok {
		return s.String()
	}
	switch v.Kind() {
	case reflect.Slice:
		parts := make([]string, v.Len())
		for i := range parts {
			parts[i] = configValue(v.Index(i))
		}
		return strings.Join(parts, ",")
	case reflect.Pointer:
		if v.IsNil() {
			return ""
		}
		return configValue(v.Elem())
	}
	return fmt.Sprint(v.Interface())
}

func (con *Console) showLists() []byte {
	cfg := con.t.Config()
	l := con.t.Lists()
	consoles := con.Sessions()
	dbs := 0
	for name := range cfg.Databases {
		if name != config.WildcardDatabase {
			dbs++
		}
	}
	r := newResult(showListsCols)
	r.row("databases", dbs)
	r.row("users", len(cfg.Users))
	r.row("pools", l.Pools)
	r.row("free_clients", 0)
	r.row("used_clients", l.LoggedIn+consoles)
	r.row("login_clients", max(l.Connections-l.LoggedIn-consoles, 0))
	r.row("free_servers", 0)
	r.row("used_servers", l.Servers)
	for _, n := range []string{"dns_names", "dns_zones", "dns_queries", "dns_pending"} {
		r.row(n, 0)
	}
	return r.finish()
}

// showMem reports what mux keeps per object, in PgBouncer's columns: size
// is the bytes of one object (structure only, or the average for
// prepared statements), used the number alive, free 0 (mux keeps no free
// lists; buffers are pooled by the Go runtime), memtotal size × used.
func (con *Console) showMem() []byte {
	l, m := con.t.Lists(), con.t.Mem()
	consoles := con.Sessions()
	r := newResult(showMemCols)
	add := func(name string, size, used int) { r.row(name, size, used, 0, size*used) }
	add("client_cache", m.ClientSize, l.LoggedIn+consoles)
	add("server_cache", m.ServerSize, l.Servers)
	add("pool_cache", m.PoolSize, l.Pools)
	if m.Statements > 0 {
		r.row("prepared_statement_cache", m.StatementBytes/m.Statements, m.Statements, 0, m.StatementBytes)
	} else {
		add("prepared_statement_cache", 0, 0)
	}
	return r.finish()
}
