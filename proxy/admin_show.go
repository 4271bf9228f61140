package proxy

import (
	"cmp"
	"fmt"
	"math"
	"net"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
)

// Column types of console results, as PgBouncer declares them.
var colTypes = map[string]struct {
	oid  uint32
	size int16
}{
	"text":    {25, -1},
	"int4":    {23, 4},
	"int8":    {20, 8},
	"numeric": {1700, -1},
}

// columns builds a RowDescription from "name:type name:type …".
func columns(spec string) []pgproto3.FieldDescription {
	var out []pgproto3.FieldDescription
	for _, f := range strings.Fields(spec) {
		name, typ, _ := strings.Cut(f, ":")
		t, ok := colTypes[typ]
		if !ok {
			panic("admin: bad column type in " + f)
		}
		out = append(out, pgproto3.FieldDescription{Name: []byte(name), DataTypeOID: t.oid, DataTypeSize: t.size, TypeModifier: -1})
	}
	return out
}

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
		"paused:int4 disabled:int4")
	showUsersCols    = columns("name:text pool_mode:text")
	showConfigCols   = columns("key:text value:text default:text changeable:text")
	showListsCols    = columns("list:text items:int4")
	showMemCols      = columns("name:text size:int4 used:int4 free:int4 memtotal:int4")
	showVersionCols  = columns("version:text")
	showDNSHostsCols = columns("hostname:text ttl:int8 addrs:text")
	showDNSZonesCols = columns("zonename:text serial:int8 count:int4")
)

// consoleHelp is SHOW HELP's text, sent as a NOTICE's detail like
// PgBouncer's.
const consoleHelp = `
	SHOW HELP|CONFIG|DATABASES|POOLS|CLIENTS|SERVERS|USERS|VERSION
	SHOW LISTS|MEM|DNS_HOSTS|DNS_ZONES
	SHOW STATS|STATS_TOTALS|STATS_AVERAGES|TOTALS
	RELOAD
	PAUSE [<db>]
	RESUME [<db>]
	DISABLE <db>
	ENABLE <db>
	RECONNECT [<db>]
	KILL <db>
	SHUTDOWN
	WAIT_CLOSE [<db>]`

// resultSet accumulates one SHOW's reply.
type resultSet struct {
	cols []pgproto3.FieldDescription
	out  []byte
	vals [][]byte
}

func newResult(cols []pgproto3.FieldDescription) *resultSet {
	return &resultSet{cols: cols, out: wire.AppendMessage(nil, &pgproto3.RowDescription{Fields: cols})}
}

// row appends a DataRow. Values are strings, integers or nil (NULL);
// integers in int4 columns are clamped to int4's range.
func (r *resultSet) row(vals ...any) {
	if len(vals) != len(r.cols) {
		panic(fmt.Sprintf("admin: %d values for %d columns", len(vals), len(r.cols)))
	}
	r.vals = r.vals[:0]
	for i, v := range vals {
		var n int64
		switch v := v.(type) {
		case nil:
			r.vals = append(r.vals, nil)
			continue
		case string:
			r.vals = append(r.vals, []byte(v))
			continue
		case int:
			n = int64(v)
		case int64:
			n = v
		case uint32:
			n = int64(v)
		default:
			panic(fmt.Sprintf("admin: value of type %T", v))
		}
		if r.cols[i].DataTypeOID == 23 {
			n = max(min(n, math.MaxInt32), math.MinInt32)
		}
		r.vals = append(r.vals, strconv.AppendInt(nil, n, 10))
	}
	r.out = wire.AppendMessage(r.out, &pgproto3.DataRow{Values: r.vals})
}

func (r *resultSet) finish() []byte {
	return wire.AppendMessage(r.out, &pgproto3.CommandComplete{CommandTag: []byte("SHOW")})
}

// show answers SHOW what; nil for an unknown subject.
func (s *adminSession) show(what string) ([]byte, *wire.Error) {
	p := s.c.p
	switch what {
	case "HELP":
		out := wire.AppendMessage(nil, &pgproto3.NoticeResponse{Severity: "NOTICE", SeverityUnlocalized: "NOTICE",
			Code: "00000", Message: "Console usage", Detail: consoleHelp})
		return wire.AppendMessage(out, &pgproto3.CommandComplete{CommandTag: []byte("SHOW")}), nil
	case "VERSION":
		r := newResult(showVersionCols)
		v := "PgBouncer " + pgbouncerVersion + " (mux"
		if p.Version != "" {
			v += " " + p.Version
		}
		r.row(v + ")")
		return r.finish(), nil
	case "POOLS":
		return p.showPools(), nil
	case "STATS":
		return p.showStats(true, true), nil
	case "STATS_TOTALS":
		return p.showStats(true, false), nil
	case "STATS_AVERAGES":
		return p.showStats(false, true), nil
	case "TOTALS":
		return p.showTotals(), nil
	case "CLIENTS":
		return p.showClients(), nil
	case "SERVERS":
		return p.showServers(), nil
	case "DATABASES":
		return p.showDatabases(), nil
	case "USERS":
		return p.showUsers(), nil
	case "CONFIG":
		return p.showConfig(), nil
	case "LISTS":
		return p.showLists(), nil
	case "MEM":
		return p.showMem(), nil
	case "DNS_HOSTS":
		return newResult(showDNSHostsCols).finish(), nil
	case "DNS_ZONES":
		return newResult(showDNSZonesCols).finish(), nil
	case "FDS", "SOCKETS", "ACTIVE_SOCKETS", "STATE":
		return nil, wire.Errorf(wire.CodeFeatureNotSupported, "SHOW %s is not supported by mux", what)
	}
	return nil, nil
}

// poolCounts returns each pool's counters (servers being connected are
// in Total only).
func (p *Proxy) poolCounts() map[poolKey]pool.Stats {
	p.poolMu.Lock()
	defer p.poolMu.Unlock()
	out := make(map[poolKey]pool.Stats, len(p.pools))
	for k, pl := range p.pools {
		out[k] = pl.Stats()
	}
	return out
}

// splitWait gives PgBouncer's seconds and microseconds columns.
func splitWait(d time.Duration) (int64, int64) {
	us := d.Microseconds()
	return us / 1e6, us % 1e6
}

func (p *Proxy) showPools() []byte {
	counts := p.poolCounts()
	r := newResult(showPoolsCols)
	for _, pi := range p.Pools() {
		active, idle := 0, 0
		for _, si := range pi.Servers {
			if si.State == "idle" {
				idle++
			} else {
				active++
			}
		}
		login := max(counts[poolKey{pi.Database, pi.User}].Total-len(pi.Servers), 0)
		sec, us := splitWait(pi.MaxWait)
		// PgBouncer counts a logged-in client without a server as active.
		r.row(pi.Database, pi.User, pi.ClientsActive+pi.ClientsIdle, pi.ClientsWaiting, 0, 0,
			active, 0, 0, idle, 0, 0, login, sec, us, pi.PoolMode)
	}
	return r.finish()
}

// statsPeriod is how far apart the samples behind SHOW STATS's averages
// are at least: PgBouncer's default stats_period.
const statsPeriod = 60 * time.Second

// statsSample is every database's totals at one time.
type statsSample struct {
	at   time.Time
	byDB map[string]PoolStats
}

// dbStats sums the pools' totals per database.
func (p *Proxy) dbStats() (map[string]PoolStats, []string) {
	by := map[string]PoolStats{}
	var names []string
	for _, pi := range p.Pools() {
		st, ok := by[pi.Database]
		if !ok {
			names = append(names, pi.Database)
		}
		st.Transactions += pi.Stats.Transactions
		st.Queries += pi.Stats.Queries
		st.BytesReceived += pi.Stats.BytesReceived
		st.BytesSent += pi.Stats.BytesSent
		st.TransactionTime += pi.Stats.TransactionTime
		st.QueryTime += pi.Stats.QueryTime
		st.WaitTime += pi.Stats.WaitTime
		st.Waits += pi.Stats.Waits
		by[pi.Database] = st
	}
	sort.Strings(names)
	return by, names
}

// averages returns per-database averages over the last stats period, like
// PgBouncer: counts and bytes per second, transaction and query times per
// transaction and query, wait time per second (all µs). Samples are taken
// when asked, at least statsPeriod apart; before two exist, all are 0.
func (p *Proxy) averages(now time.Time, cur map[string]PoolStats) map[string][7]int64 {
	a := &p.admin
	a.statsMu.Lock()
	if a.statsLast == nil || now.Sub(a.statsLast.at) >= statsPeriod {
		a.statsPrev, a.statsLast = a.statsLast, &statsSample{at: now, byDB: cur}
	}
	prev, last := a.statsPrev, a.statsLast
	a.statsMu.Unlock()
	out := map[string][7]int64{}
	if prev == nil {
		return out
	}
	dur := last.at.Sub(prev.at).Microseconds()
	if dur <= 0 {
		return out
	}
	for db, l := range last.byDB {
		o := prev.byDB[db]
		if l.Transactions < o.Transactions || l.Queries < o.Queries || l.BytesReceived < o.BytesReceived ||
			l.BytesSent < o.BytesSent || l.Waits < o.Waits {
			continue // a pool of db was dropped (autodb_idle_timeout): its totals restart
		}
		xacts, queries := l.Transactions-o.Transactions, l.Queries-o.Queries
		var avg [7]int64
		avg[0] = 1e6 * xacts / dur
		avg[1] = 1e6 * queries / dur
		avg[2] = 1e6 * (l.BytesReceived - o.BytesReceived) / dur
		avg[3] = 1e6 * (l.BytesSent - o.BytesSent) / dur
		if xacts > 0 {
			avg[4] = (l.TransactionTime - o.TransactionTime).Microseconds() / xacts
		}
		if queries > 0 {
			avg[5] = (l.QueryTime - o.QueryTime).Microseconds() / queries
		}
		avg[6] = 1e6 * (l.WaitTime - o.WaitTime).Microseconds() / dur
		out[db] = avg
	}
	return out
}

func totalsOf(st PoolStats) [7]int64 {
	return [7]int64{st.Transactions, st.Queries, st.BytesReceived, st.BytesSent,
		st.TransactionTime.Microseconds(), st.QueryTime.Microseconds(), st.WaitTime.Microseconds()}
}

// showStats answers SHOW STATS (totals and averages), STATS_TOTALS and
// STATS_AVERAGES.
func (p *Proxy) showStats(withTotals, withAvgs bool) []byte {
	by, names := p.dbStats()
	avgs := p.averages(time.Now(), by)
	cols := showStatsPartCols
	if withTotals && withAvgs {
		cols = showStatsCols
	}
	r := newResult(cols)
	for _, db := range names {
		vals := []any{db}
		if withTotals {
			for _, v := range totalsOf(by[db]) {
				vals = append(vals, v)
			}
		}
		if withAvgs {
			for _, v := range avgs[db] {
				vals = append(vals, v)
			}
		}
		r.row(vals...)
	}
	return r.finish()
}

func (p *Proxy) showTotals() []byte {
	by, _ := p.dbStats()
	avgs := p.averages(time.Now(), by)
	var tot, avg [7]int64
	for db, st := range by {
		for i, v := range totalsOf(st) {
			tot[i] += v
		}
		for i, v := range avgs[db] {
			avg[i] += v
		}
	}
	r := newResult(showTotalsCols)
	names := [7]string{"xact_count", "query_count", "client_bytes", "server_bytes", "xact_time", "query_time", "wait_time"}
	for i, n := range names {
		r.row("total_"+n, tot[i])
	}
	for i, n := range names {
		r.row("avg_"+n, avg[i])
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

func (p *Proxy) showClients() []byte {
	var rows []clientRow
	for _, ci := range p.Clients() {
		cr := clientRow{id: ci.ID, user: ci.User, database: ci.Database, state: "active",
			remote: ci.Remote, local: ci.Local, connected: ci.ConnectTime, lastRequest: ci.RequestTime,
			appName: ci.ApplicationName, pinReason: ci.PinReason}
		if ci.State == "waiting" {
			cr.state = "waiting" // since when is not recorded: wait stays 0
		}
		if ci.ServerID != 0 {
			cr.link = ptr(ci.ServerID)
		}
		if ci.TLS {
			cr.tlsStatus = "TLS"
		}
		rows = append(rows, cr)
	}
	p.admin.mu.Lock()
	for c, s := range p.admin.sessions {
		cr := clientRow{id: c.id, user: c.user, database: c.database, state: "active",
			remote: c.conn.RemoteAddr(), local: c.conn.LocalAddr(), connected: c.connected,
			lastRequest: time.Unix(0, s.lastReq.Load()), appName: s.appName}
		if c.tls {
			cr.tlsStatus = "TLS"
		}
		rows = append(rows, cr)
	}
	p.admin.mu.Unlock()
	slices.SortFunc(rows, func(a, b clientRow) int { return cmp.Compare(a.id, b.id) })
	r := newResult(showClientsCols)
	for _, cr := range rows {
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

func (p *Proxy) showServers() []byte {
	owner := map[uint64]uint64{} // server ID → client ID
	for _, ci := range p.Clients() {
		if ci.ServerID != 0 {
			owner[ci.ServerID] = ci.ID
		}
	}
	r := newResult(showSocketsCols)
	for _, pi := range p.Pools() {
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
			closeNeeded := 0
			if si.CloseNeeded {
				closeNeeded = 1
			}
			r.row("S", pi.Target.User, pi.Database, si.State, addr, port, laddr, lport,
				sqlTime(si.ConnectTime), sqlTime(req), 0, 0, closeNeeded, ptr(si.ID), link, si.BackendPID, "", "")
		}
	}
	return r.finish()
}

// nullIfEmpty shows "" as NULL, as PgBouncer shows unset values.
func nullIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (p *Proxy) showDatabases() []byte {
	cfg := p.config()
	conns := map[string]int{}
	for _, pi := range p.Pools() {
		conns[pi.Database] += len(pi.Servers)
	}
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
	a := &p.admin
	r := newResult(showDatabasesCols)
	for _, name := range names {
		db, ok := cfg.LookupDatabase(name)
		if !ok {
			continue // a pool left over from a database a reload removed
		}
		raw := cfg.Databases[name]
		if _, explicit := cfg.Databases[name]; !explicit {
			raw = cfg.Databases[config.WildcardDatabase]
		}
		paused, disabled := 0, 0
		if a.isPaused(name) {
			paused = 1
		}
		if a.isDisabled(name) {
			disabled = 1
		}
		r.row(name, db.Host, db.Port, db.DBName, nullIfEmpty(db.User), db.PoolSize, db.MinPoolSize, 0,
			nullIfEmpty(raw.PoolMode), 0, conns[name], paused, disabled)
	}
	return r.finish()
}

// showUsers lists user names and pool modes; never secrets.
func (p *Proxy) showUsers() []byte {
	cfg := p.config()
	names := make([]string, 0, len(cfg.Users))
	for name := range cfg.Users {
		names = append(names, name)
	}
	sort.Strings(names)
	r := newResult(showUsersCols)
	for _, name := range names {
		r.row(name, nullIfEmpty(cfg.Users[name].PoolMode))
	}
	return r.finish()
}

// restartOnlyKeys are the settings RELOAD does not apply.
var restartOnlyKeys = map[string]bool{
	"listen": true, "unix_socket_dir": true, "unix_socket_mode": true,
	"http_listen": true, "log_format": true, "handover_socket": true,
}

// showConfig lists the top-level settings of the configuration in force
// (with passwords redacted) next to their defaults.
func (p *Proxy) showConfig() []byte {
	cur := reflect.ValueOf(p.config().Redacted()).Elem()
	def := reflect.ValueOf(config.Default()).Elem()
	type kv struct{ key, value, def string }
	var list []kv
	for i := range cur.NumField() {
		f := cur.Type().Field(i)
		key, _, _ := strings.Cut(f.Tag.Get("toml"), ",")
		if key == "" || key == "-" || f.Type.Kind() == reflect.Map {
			continue // [databases] and [users] have SHOW DATABASES and USERS
		}
		list = append(list, kv{key, configValue(cur.Field(i)), configValue(def.Field(i))})
	}
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

func (p *Proxy) showLists() []byte {
	cfg := p.config()
	counts := p.poolCounts()
	servers := 0
	for _, st := range counts {
		servers += st.Total
	}
	dbs := 0
	for name := range cfg.Databases {
		if name != config.WildcardDatabase {
			dbs++
		}
	}
	loggedIn := p.loggedIn()
	p.admin.mu.Lock()
	consoles := len(p.admin.sessions)
	p.admin.mu.Unlock()
	r := newResult(showListsCols)
	r.row("databases", dbs)
	r.row("users", len(cfg.Users))
	r.row("pools", len(counts))
	r.row("free_clients", 0)
	r.row("used_clients", loggedIn+consoles)
	r.row("login_clients", max(p.NumClients()-loggedIn-consoles, 0))
	r.row("free_servers", 0)
	r.row("used_servers", servers)
	for _, n := range []string{"dns_names", "dns_zones", "dns_queries", "dns_pending"} {
		r.row(n, 0)
	}
	return r.finish()
}

// showMem reports what mux keeps per object, in PgBouncer's columns: size
// is the bytes of one object (structure only, or the average for
// prepared statements), used the number alive, free 0 (mux keeps no free
// lists; buffers are pooled by the Go runtime), memtotal size × used.
func (p *Proxy) showMem() []byte {
	counts := p.poolCounts()
	servers := 0
	for _, st := range counts {
		servers += st.Total
	}
	stmts, stmtBytes := 0, 0
	p.poolMu.Lock()
	for _, reg := range p.stmts {
		reg.mu.Lock()
		stmts += len(reg.byKey)
		for _, st := range reg.byKey {
			stmtBytes += int(unsafe.Sizeof(*st)) + len(st.key) + len(st.parse)
		}
		reg.mu.Unlock()
	}
	p.poolMu.Unlock()
	p.admin.mu.Lock()
	consoles := len(p.admin.sessions)
	p.admin.mu.Unlock()
	r := newResult(showMemCols)
	add := func(name string, size, used int) { r.row(name, size, used, 0, size*used) }
	add("client_cache", int(unsafe.Sizeof(clientConn{})), p.loggedIn()+consoles)
	add("server_cache", int(unsafe.Sizeof(pool.Server{})), servers)
	add("pool_cache", int(unsafe.Sizeof(pool.Pool{})+unsafe.Sizeof(stmtRegistry{})+unsafe.Sizeof(poolStats{})), len(counts))
	if stmts > 0 {
		r.row("prepared_statement_cache", stmtBytes/stmts, stmts, 0, stmtBytes)
	} else {
		add("prepared_statement_cache", 0, 0)
	}
	return r.finish()
}
