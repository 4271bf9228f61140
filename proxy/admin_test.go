package proxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/muxpg/mux/admin"
	"github.com/muxpg/mux/internal/wire"
)

// adminTop makes muxuser an admin and md5user a stats user.
const adminTop = "admin_users = [\"muxuser\"]\nstats_users = [\"md5user\"]"

// pgbouncerColumns are the RowDescriptions of PgBouncer 1.18.0's console
// (Debian bookworm's package), as read from a running pgbouncer: name and
// type OID of every column (25 text, 23 int4, 20 int8, 1700 numeric).
var pgbouncerColumns = map[string]string{
	"SHOW POOLS": "database:25 user:25 cl_active:23 cl_waiting:23 cl_active_cancel_req:23 cl_waiting_cancel_req:23 " +
		"sv_active:23 sv_active_cancel:23 sv_being_canceled:23 sv_idle:23 sv_used:23 sv_tested:23 sv_login:23 " +
		"maxwait:23 maxwait_us:23 pool_mode:25",
	"SHOW STATS": "database:25 total_xact_count:1700 total_query_count:1700 total_received:1700 total_sent:1700 " +
		"total_xact_time:1700 total_query_time:1700 total_wait_time:1700 avg_xact_count:1700 avg_query_count:1700 " +
		"avg_recv:1700 avg_sent:1700 avg_xact_time:1700 avg_query_time:1700 avg_wait_time:1700",
	"SHOW STATS_TOTALS": "database:25 xact_count:1700 query_count:1700 bytes_received:1700 bytes_sent:1700 " +
		"xact_time:1700 query_time:1700 wait_time:1700",
	"SHOW STATS_AVERAGES": "database:25 xact_count:1700 query_count:1700 bytes_received:1700 bytes_sent:1700 " +
		"xact_time:1700 query_time:1700 wait_time:1700",
	"SHOW TOTALS": "name:25 value:1700",
	"SHOW CLIENTS": "type:25 user:25 database:25 state:25 addr:25 port:23 local_addr:25 local_port:23 " +
		"connect_time:25 request_time:25 wait:23 wait_us:23 close_needed:23 ptr:25 link:25 remote_pid:23 tls:25 " +
		"application_name:25",
	"SHOW SERVERS": "type:25 user:25 database:25 state:25 addr:25 port:23 local_addr:25 local_port:23 " +
		"connect_time:25 request_time:25 wait:23 wait_us:23 close_needed:23 ptr:25 link:25 remote_pid:23 tls:25 " +
		"application_name:25",
	"SHOW DATABASES": "name:25 host:25 port:23 database:25 force_user:25 pool_size:23 min_pool_size:23 " +
		"reserve_pool:23 pool_mode:25 max_connections:23 current_connections:23 paused:23 disabled:23",
	"SHOW USERS":     "name:25 pool_mode:25",
	"SHOW CONFIG":    "key:25 value:25 default:25 changeable:25",
	"SHOW LISTS":     "list:25 items:23",
	"SHOW MEM":       "name:25 size:23 used:23 free:23 memtotal:23",
	"SHOW VERSION":   "version:25",
	"SHOW DNS_HOSTS": "hostname:25 ttl:20 addrs:25",
	"SHOW DNS_ZONES": "zonename:25 serial:20 count:23",
}

// adminConn opens a pgx connection to the admin console. The console
// speaks only the simple query protocol, so pgx must use it.
func (m *testMux) adminConn(t testing.TB, user, password string) *pgx.Conn {
	t.Helper()
	return m.connectAs(t, user, password, "pgbouncer", "default_query_exec_mode=simple_protocol")
}

// consoleResult is one answer of a console (or of PgBouncer's).
type consoleResult struct {
	cols string // "name:oid …"
	rows []map[string]string
}

// consoleExec runs one command on pc and returns its result.
func consoleExec(ctx context.Context, pc *pgconn.PgConn, q string) (*consoleResult, error) {
	mrr := pc.Exec(ctx, q)
	var out *consoleResult
	for mrr.NextResult() {
		rr := mrr.ResultReader()
		res := &consoleResult{}
		var cols []string
		fds := rr.FieldDescriptions()
		for _, fd := range fds {
			cols = append(cols, fmt.Sprintf("%s:%d", fd.Name, fd.DataTypeOID))
		}
		res.cols = strings.Join(cols, " ")
		for rr.NextRow() {
			row := map[string]string{}
			for i, v := range rr.Values() {
				if v == nil {
					row[fds[i].Name] = "NULL"
				} else {
					row[fds[i].Name] = string(v)
				}
			}
			res.rows = append(res.rows, row)
		}
		if _, err := rr.Close(); err != nil {
			_ = mrr.Close()
			return nil, err
		}
		if out != nil {
			_ = mrr.Close()
			return nil, fmt.Errorf("%s: several results", q)
		}
		out = res
	}
	if err := mrr.Close(); err != nil {
		return nil, err
	}
	if out == nil {
		return nil, fmt.Errorf("%s: no result", q)
	}
	return out, nil
}

// adminQuery runs a console command, failing the test on an error.
func adminQuery(t testing.TB, conn *pgx.Conn, q string) *consoleResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := consoleExec(ctx, conn.PgConn(), q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return res
}

// adminErr runs a console command that must fail, and returns its SQLSTATE.
func adminErr(t testing.TB, conn *pgx.Conn, q string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := consoleExec(ctx, conn.PgConn(), q)
	if err == nil {
		t.Fatalf("%s succeeded, want an error", q)
	}
	return sqlstate(err)
}

// find returns the first row whose column col is val, or nil.
func (r *consoleResult) find(col, val string) map[string]string {
	for _, row := range r.rows {
		if row[col] == val {
			return row
		}
	}
	return nil
}

// setAdminHooks installs RELOAD and SHUTDOWN hooks on a serving proxy.
func setAdminHooks(p *Proxy, reload func() error, shutdown func(DrainMode)) {
	p.admin.mu.Lock()
	p.OnReload, p.OnShutdown = reload, shutdown
	p.admin.mu.Unlock()
}

// Every SHOW answers with PgBouncer 1.18's column names and types; SHOW
// HELP is a NOTICE, as in PgBouncer; the console also answers as "mux".
// muxExtraColumns are columns mux adds after PgBouncer's.
var muxExtraColumns = map[string]string{
	"SHOW CLIENTS":   " pin_reason:25",
	"SHOW DATABASES": " max_client_connections:23 current_client_connections:23",
	"SHOW USERS": " pool_size:25 reserve_pool_size:25 max_user_connections:23 current_connections:23 " +
		"max_user_client_connections:23 current_client_connections:23",
}

func TestAdminShowColumns(t *testing.T) {
	m := startMux(t, adminTop)
	client := m.connect(t)
	queryString(t, client, "SELECT 'x'")
	for _, db := range []string{"pgbouncer", "mux"} {
		conn := m.connectAs(t, "muxuser", "muxpass", db, "default_query_exec_mode=simple_protocol")
		for show, want := range pgbouncerColumns {
			if got := adminQuery(t, conn, show).cols; got != want+muxExtraColumns[show] {
				t.Errorf("%s on %s:\n got %s\nwant %s", show, db, got, want)
			}
		}
	}

	cfg, err := pgconn.ParseConfig(m.dsn("md5user", "md5pass", "pgbouncer"))
	if err != nil {
		t.Fatal(err)
	}
	var notices []*pgconn.Notice
	cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) { notices = append(notices, n) }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close(ctx)
	if v := pc.ParameterStatus("server_version"); v != admin.PgBouncerVersion+"/bouncer" {
		t.Errorf("server_version %q", v)
	}
	res, err := consoleExec(ctx, pc, "SHOW HELP")
	if err != nil {
		t.Fatal(err)
	}
	if res.cols != "" || len(notices) != 1 || notices[0].Message != "Console usage" || !strings.Contains(notices[0].Detail, "PAUSE [<db>]") {
		t.Fatalf("SHOW HELP: columns %q, notices %+v", res.cols, notices)
	}
}

// SHOW rows describe mux's pools, clients and servers; passwords never
// appear.
func TestAdminShowValues(t *testing.T) {
	m := startMux(t, adminTop)
	ctx := context.Background()
	conn := m.adminConn(t, "muxuser", "muxpass")
	client := m.connect(t, "application_name=showme")
	queryString(t, client, "SELECT 'warm'") // one finished transaction
	if _, err := client.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	pid := queryString(t, client, "SELECT pg_backend_pid()::text")

	pools := adminQuery(t, conn, "SHOW POOLS")
	row := pools.find("database", "muxtest")
	if row == nil || row["user"] != "muxuser" || row["cl_active"] != "1" || row["sv_active"] != "1" || row["pool_mode"] != "transaction" {
		t.Errorf("SHOW POOLS: %v", pools.rows)
	}
	clients := adminQuery(t, conn, "SHOW CLIENTS")
	cl := clients.find("application_name", "showme")
	if cl == nil || cl["type"] != "C" || cl["database"] != "muxtest" || cl["state"] != "active" ||
		cl["addr"] != "127.0.0.1" || cl["local_port"] != strconv.Itoa(m.port) || cl["link"] == "" {
		t.Errorf("SHOW CLIENTS lacks the client: %v", clients.rows)
	}
	if clients.find("database", "pgbouncer") == nil {
		t.Errorf("SHOW CLIENTS lacks the console session: %v", clients.rows)
	}
	servers := adminQuery(t, conn, "SHOW SERVERS")
	sv := servers.find("remote_pid", pid)
	if sv == nil || sv["type"] != "S" || sv["state"] != "active" || sv["database"] != "muxtest" ||
		sv["port"] != strconv.Itoa(cluster.Port) || cl == nil || sv["link"] != cl["ptr"] || sv["ptr"] != cl["link"] {
		t.Errorf("SHOW SERVERS (backend %s, client %v): %v", pid, cl, servers.rows)
	}
	if _, err := client.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}

	stats := adminQuery(t, conn, "SHOW STATS").find("database", "muxtest")
	if n, _ := strconv.Atoi(stats["total_xact_count"]); n < 2 {
		t.Errorf("SHOW STATS: %v", stats)
	}
	if n, _ := strconv.Atoi(stats["total_received"]); n == 0 {
		t.Errorf("SHOW STATS: %v", stats)
	}
	totals := adminQuery(t, conn, "SHOW TOTALS").find("name", "total_query_count")
	if n, _ := strconv.Atoi(totals["value"]); n < 3 {
		t.Errorf("SHOW TOTALS: %v", totals)
	}

	dbs := adminQuery(t, conn, "SHOW DATABASES")
	if r := dbs.find("name", "bench"); r == nil || r["force_user"] != "benchuser" || r["pool_size"] != "20" || r["pool_mode"] != "NULL" {
		t.Errorf("SHOW DATABASES: %v", dbs.rows)
	}
	nservers := strconv.Itoa(len(adminQuery(t, conn, "SHOW SERVERS").rows))
	if r := dbs.find("name", "muxtest"); r == nil || r["current_connections"] != nservers || r["paused"] != "0" || r["host"] != cluster.Host {
		t.Errorf("SHOW DATABASES (%s servers): %v", nservers, dbs.rows)
	}
	users := adminQuery(t, conn, "SHOW USERS")
	if len(users.rows) != len(m.cfg.Users) || users.find("name", "md5user") == nil {
		t.Errorf("SHOW USERS: %v", users.rows)
	}
	cfgRows := adminQuery(t, conn, "SHOW CONFIG")
	if r := cfgRows.find("key", "admin_users"); r == nil || r["value"] != "muxuser" || r["default"] != "" {
		t.Errorf("SHOW CONFIG admin_users: %v", r)
	}
	if r := cfgRows.find("key", "listen"); r == nil || r["changeable"] != "no" {
		t.Errorf("SHOW CONFIG listen: %v", r)
	}
	for _, show := range []string{"SHOW CONFIG", "SHOW USERS", "SHOW DATABASES"} {
		s := fmt.Sprint(adminQuery(t, conn, show).rows)
		var secrets []string
		for _, u := range m.cfg.Users {
			secrets = append(secrets, u.Password)
		}
		for _, db := range m.cfg.Databases {
			secrets = append(secrets, db.Password)
		}
		for _, pw := range secrets {
			if pw != "" && strings.Contains(s, pw) {
				t.Errorf("%s shows a password: %s", show, s)
			}
		}
	}
	if r := adminQuery(t, conn, "SHOW LISTS").find("list", "pools"); r["items"] != "1" {
		t.Errorf("SHOW LISTS pools: %v", r)
	}
	if r := adminQuery(t, conn, "SHOW MEM").find("name", "server_cache"); r == nil || r["used"] != nservers {
		t.Errorf("SHOW MEM server_cache: %v", r)
	}
	if v := adminQuery(t, conn, "SHOW VERSION").rows[0]["version"]; !strings.HasPrefix(v, "PgBouncer "+admin.PgBouncerVersion) {
		t.Errorf("SHOW VERSION %q", v)
	}
}

// Only admin_users and stats_users get in, after authenticating; a stats
// user may only SHOW, and its session survives a refused command.
func TestAdminAccess(t *testing.T) {
	m := startMux(t, adminTop)
	if code := connectErr(t, m.dsn("pwuser", "pwpass", "pgbouncer")); code != "28000" {
		t.Errorf("non-admin: SQLSTATE %q, want 28000", code)
	}
	if code := connectErr(t, m.dsn("muxuser", "wrong", "pgbouncer")); code != "28P01" {
		t.Errorf("wrong password: SQLSTATE %q, want 28P01", code)
	}
	stats := m.adminConn(t, "md5user", "md5pass")
	adminQuery(t, stats, "SHOW POOLS")
	for _, q := range []string{"PAUSE", "PAUSE muxtest", "RELOAD", "KILL muxtest", "DISABLE muxtest", "SHUTDOWN"} {
		if code := adminErr(t, stats, q); code != wire.CodeInsufficientPrivilege {
			t.Errorf("stats user %s: SQLSTATE %q, want 42501", q, code)
		}
	}
	if v := adminQuery(t, stats, "SHOW VERSION").rows; len(v) != 1 {
		t.Fatalf("SHOW VERSION after refusals: %v", v)
	}
}

// Commands are case-insensitive with an optional semicolon; mistakes are
// errors that leave the session usable; extended protocol is refused.
func TestAdminCommands(t *testing.T) {
	m := startMux(t, adminTop)
	conn := m.adminConn(t, "muxuser", "muxpass")
	for _, q := range []string{"show version;", "  Show Version ; ", "SHOW\tversion"} {
		adminQuery(t, conn, q)
	}
	for q, code := range map[string]string{
		"SHOW":                   "08P01",
		"SHOW NOTHING":           "08P01",
		"select 1":               "08P01",
		"":                       "08P01",
		"show version; show mem": "08P01",
		"pause nosuch":           "3D000",
		"kill_client":            "08P01",
		"pause pgbouncer":        "0A000",
		"resume muxtest":         "55000",
		"resume":                 "55000",
		"pause muxtest extra":    "08P01",
		"SET pool_mode = 'x'":    "55P02",
		"SHOW SOCKETS":           "0A000",
		"RELOAD":                 "0A000", // no hook in this test
	} {
		if got := adminErr(t, conn, q); got != code {
			t.Errorf("%q: SQLSTATE %q, want %q", q, got, code)
		}
	}
	adminQuery(t, conn, `PAUSE "muxtest"`)
	if r := adminQuery(t, conn, "SHOW DATABASES").find("name", "muxtest"); r["paused"] != "1" {
		t.Errorf("after PAUSE: %v", r)
	}
	adminQuery(t, conn, "resume muxtest;")
	adminQuery(t, conn, "PAUSE")
	adminQuery(t, conn, "RESUME")

	// The extended protocol gets one error per Sync; the session goes on.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := conn.PgConn().ExecParams(ctx, "SHOW VERSION", nil, nil, nil, nil).Read().Err
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "08P01" || !strings.Contains(pe.Message, "simple query protocol") {
		t.Fatalf("extended protocol: %v", err)
	}
	adminQuery(t, conn, "SHOW VERSION")
}

// PAUSE waits for the transaction in progress, then holds new transactions
// and new logins until RESUME.
func TestAdminPauseResume(t *testing.T) {
	m := startMux(t, adminTop)
	ctx := context.Background()
	conn := m.adminConn(t, "muxuser", "muxpass")
	inTx := m.connect(t)
	later := m.connect(t)
	if _, err := inTx.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	queryString(t, inTx, "SELECT 'holding a server'")

	paused := make(chan *consoleResult, 1)
	go func() {
		res, _ := consoleExec(ctx, conn.PgConn(), "PAUSE muxtest")
		paused <- res
	}()
	select {
	case <-paused:
		t.Fatal("PAUSE returned while a transaction was open")
	case <-time.After(300 * time.Millisecond):
	}
	if _, err := inTx.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	select {
	case res := <-paused:
		if res == nil {
			t.Fatal("PAUSE failed")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("PAUSE did not return after the transaction ended")
	}
	waitFor(t, "PAUSE to close the servers", 5*time.Second, func() bool { return serverCount(t, "muxuser") == 0 })

	queried := make(chan error, 1)
	go func() {
		_, err := later.Exec(ctx, "SELECT 1")
		queried <- err
	}()
	type connResult struct {
		conn *pgx.Conn
		err  error
	}
	loggedIn := make(chan connResult, 1)
	go func() {
		c, err := pgx.Connect(ctx, m.dsn("muxuser", "muxpass", "muxtest"))
		loggedIn <- connResult{c, err}
	}()
	select {
	case err := <-queried:
		t.Fatalf("a query ran while paused (%v)", err)
	case r := <-loggedIn:
		t.Fatalf("a login finished while paused (%v)", r.err)
	case <-time.After(300 * time.Millisecond):
	}
	waitFor(t, "the held client to show as waiting", 5*time.Second, func() bool {
		r := adminQuery(t, conn, "SHOW POOLS").find("database", "muxtest")
		return r != nil && r["cl_waiting"] == "1"
	})
	adminQuery(t, conn, "RESUME muxtest")
	if err := <-queried; err != nil {
		t.Fatalf("held query: %v", err)
	}
	r := <-loggedIn
	if r.err != nil {
		t.Fatalf("held login: %v", r.err)
	}
	r.conn.Close(ctx)
}

// DISABLE refuses new logins to a database (57P03); connected clients go
// on; ENABLE lets logins in again.
func TestAdminDisableEnable(t *testing.T) {
	m := startMux(t, adminTop)
	conn := m.adminConn(t, "muxuser", "muxpass")
	client := m.connect(t)
	adminQuery(t, conn, "DISABLE muxtest")
	if code := connectErr(t, m.dsn("muxuser", "muxpass", "muxtest")); code != "57P03" {
		t.Errorf("login to a disabled database: SQLSTATE %q, want 57P03", code)
	}
	if r := adminQuery(t, conn, "SHOW DATABASES").find("name", "muxtest"); r["disabled"] != "1" {
		t.Errorf("SHOW DATABASES: %v", r)
	}
	queryString(t, client, "SELECT 'still here'")
	m.connectAs(t, "muxuser", "muxpass", "bench") // other databases are open
	adminQuery(t, conn, "ENABLE muxtest")
	m.connect(t)
}

// KILL ends every client of the database at once (57P01) and closes its
// servers; like PgBouncer, new clients then wait until RESUME.
func TestAdminKill(t *testing.T) {
	m := startMux(t, adminTop)
	ctx := context.Background()
	conn := m.adminConn(t, "muxuser", "muxpass")
	idle := m.connect(t)
	inTx := m.connect(t)
	other := m.connectAs(t, "muxuser", "muxpass", "bench")
	queryString(t, idle, "SELECT 'x'")
	if _, err := inTx.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	queryString(t, inTx, "SELECT 'in a transaction'")

	adminQuery(t, conn, "KILL muxtest")
	for name, c := range map[string]*pgx.Conn{"idle": idle, "in transaction": inTx} {
		_, err := c.Exec(ctx, "SELECT 1")
		if err == nil {
			t.Errorf("%s client survived KILL", name)
		} else if code := sqlstate(err); code != "" && code != "57P01" {
			t.Errorf("%s client: %v, want 57P01", name, err)
		}
	}
	waitFor(t, "muxtest's servers to close", 5*time.Second, func() bool { return serverCount(t, "muxuser") == 0 })
	queryString(t, other, "SELECT 'other database untouched'")

	loggedIn := make(chan error, 1)
	go func() {
		c, err := pgx.Connect(ctx, m.dsn("muxuser", "muxpass", "muxtest"))
		if err == nil {
			c.Close(ctx)
		}
		loggedIn <- err
	}()
	select {
	case err := <-loggedIn:
		t.Fatalf("login after KILL finished before RESUME (%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	adminQuery(t, conn, "RESUME muxtest")
	if err := <-loggedIn; err != nil {
		t.Fatal(err)
	}
}

// RECONNECT closes idle servers now (the next transaction gets a new
// backend) and lent ones when released; WAIT_CLOSE waits for those.
func TestAdminReconnectWaitClose(t *testing.T) {
	t.Run("transaction", func(t *testing.T) {
		m := startMux(t, adminTop)
		conn := m.adminConn(t, "muxuser", "muxpass")
		client := m.connect(t)
		before := queryString(t, client, "SELECT pg_backend_pid()::text")
		adminQuery(t, conn, "RECONNECT muxtest")
		if after := queryString(t, client, "SELECT pg_backend_pid()::text"); after == before {
			t.Fatalf("backend %s kept after RECONNECT", before)
		}
		adminQuery(t, conn, "RECONNECT")
		adminQuery(t, conn, "WAIT_CLOSE")
	})
	t.Run("session", func(t *testing.T) {
		m := startMux(t, adminTop+"\npool_mode = \"session\"")
		conn := m.adminConn(t, "muxuser", "muxpass")
		ctx := context.Background()
		client, err := pgx.Connect(ctx, m.dsn("muxuser", "muxpass", "muxtest"))
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close(ctx)
		before := queryString(t, client, "SELECT pg_backend_pid()::text")
		adminQuery(t, conn, "RECONNECT muxtest")
		if r := adminQuery(t, conn, "SHOW SERVERS").find("remote_pid", before); r == nil || r["close_needed"] != "1" {
			t.Fatalf("SHOW SERVERS after RECONNECT: %v", r)
		}
		if again := queryString(t, client, "SELECT pg_backend_pid()::text"); again != before {
			t.Fatal("a session-mode client lost its server to RECONNECT")
		}
		waited := make(chan error, 1)
		go func() {
			_, err := consoleExec(ctx, conn.PgConn(), "WAIT_CLOSE muxtest")
			waited <- err
		}()
		select {
		case err := <-waited:
			t.Fatalf("WAIT_CLOSE returned while the server was lent (%v)", err)
		case <-time.After(300 * time.Millisecond):
		}
		client.Close(ctx)
		select {
		case err := <-waited:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("WAIT_CLOSE did not return after the server was released")
		}
		next := m.connect(t)
		if pid := queryString(t, next, "SELECT pg_backend_pid()::text"); pid == before {
			t.Fatal("the server marked by RECONNECT was reused")
		}
	})
}

// RELOAD and SHUTDOWN call the hooks cmd/mux installs; SHUTDOWN closes the
// session without a reply, as PgBouncer.
func TestAdminReloadShutdown(t *testing.T) {
	m := startMux(t, adminTop)
	var reloads, shutdowns atomic.Int32
	var reloadErr error
	var mu sync.Mutex
	setAdminHooks(m.p, func() error {
		reloads.Add(1)
		mu.Lock()
		defer mu.Unlock()
		return reloadErr
	}, func(DrainMode) { shutdowns.Add(1) })
	conn := m.adminConn(t, "muxuser", "muxpass")
	adminQuery(t, conn, "RELOAD")
	mu.Lock()
	reloadErr = errors.New("pool_mode: bad value")
	mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := consoleExec(ctx, conn.PgConn(), "reload;")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != wire.CodeConfigFileError || !strings.Contains(pe.Message, "pool_mode: bad value") {
		t.Fatalf("failed RELOAD: %v", err)
	}
	if reloads.Load() != 2 {
		t.Fatalf("%d reloads, want 2", reloads.Load())
	}
	if _, err := consoleExec(ctx, conn.PgConn(), "SHUTDOWN"); err == nil {
		t.Fatal("SHUTDOWN answered; the session should have ended")
	}
	if shutdowns.Load() != 1 {
		t.Fatalf("%d shutdown calls, want 1", shutdowns.Load())
	}
}

// pgbouncerBinary finds the pgbouncer program.
func pgbouncerBinary() (string, error) {
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return p, nil
	}
	if _, err := os.Stat("/usr/sbin/pgbouncer"); err == nil {
		return "/usr/sbin/pgbouncer", nil
	}
	return "", errors.New("pgbouncer not found on PATH or at /usr/sbin/pgbouncer: install it " +
		"(\"apt-get install -y pgbouncer\"); this test compares mux's admin console with the real one")
}

// startPgBouncer runs pgbouncer in front of the test cluster with muxuser
// as admin and md5user as stats user, and returns its address. PgBouncer
// refuses to run as root: as root it runs as the OS user postgres.
func startPgBouncer(t *testing.T) (host string, port int) {
	t.Helper()
	bin, err := pgbouncerBinary()
	if err != nil {
		t.Fatal(err)
	}
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatalf("running as root, pgbouncer needs the OS user postgres: %v", err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		cred = &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}
	}
	dir, err := os.MkdirTemp("", "mux-pgbouncer-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port = ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	files := map[string]string{
		"users.txt": "\"muxuser\" \"muxpass\"\n\"md5user\" \"md5pass\"\n",
		"pgbouncer.ini": fmt.Sprintf(`[databases]
muxtest = host=%s port=%d dbname=muxtest
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = %d
unix_socket_dir =
auth_type = trust
auth_file = %s
admin_users = muxuser
stats_users = md5user
logfile =
pidfile =
`, cluster.Host, cluster.Port, port, filepath.Join(dir, "users.txt")),
	}
	for name, text := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if cred != nil {
			if err := os.Chown(filepath.Join(dir, name), int(cred.Uid), int(cred.Gid)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(bin, filepath.Join(dir, "pgbouncer.ini"))
	if cred != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	}
	var logs bytes.Buffer
	var logMu sync.Mutex
	cmd.Stdout = lockedWriter{&logMu, &logs}
	cmd.Stderr = lockedWriter{&logMu, &logs}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting pgbouncer: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return "127.0.0.1", port
		}
		select {
		case <-exited:
			logMu.Lock()
			defer logMu.Unlock()
			t.Fatalf("pgbouncer exited:\n%s", logs.String())
		default:
		}
		if time.Now().After(deadline) {
			logMu.Lock()
			defer logMu.Unlock()
			t.Fatalf("pgbouncer did not listen on %d:\n%s", port, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type lockedWriter struct {
	mu *sync.Mutex
	w  *bytes.Buffer
}

func (l lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// mux's console and a real PgBouncer's answer every SHOW with the same
// column names and types, report the same ParameterStatus values at login,
// and both answer SHOW HELP with a NOTICE only.
func TestAdminMatchesRealPgBouncer(t *testing.T) {
	m := startMux(t, adminTop) // first: its leak check runs after pgbouncer is gone
	host, port := startPgBouncer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	connect := func(dsn string) *pgconn.PgConn {
		pc, err := pgconn.Connect(ctx, dsn)
		if err != nil {
			t.Fatalf("%s: %v", dsn, err)
		}
		t.Cleanup(func() { pc.Close(context.Background()) })
		return pc
	}
	bouncer := connect(fmt.Sprintf("host=%s port=%d user=muxuser dbname=pgbouncer sslmode=disable", host, port))
	mux := connect(m.dsn("muxuser", "muxpass", "pgbouncer"))

	ver, err := consoleExec(ctx, bouncer, "SHOW VERSION")
	if err != nil {
		t.Fatal(err)
	}
	version := ver.rows[0]["version"]
	t.Logf("comparing with %s", version)
	for _, name := range []string{"server_version", "client_encoding", "server_encoding", "DateStyle", "TimeZone",
		"standard_conforming_strings", "is_superuser"} {
		if b, x := bouncer.ParameterStatus(name), mux.ParameterStatus(name); b != x {
			t.Errorf("ParameterStatus %s: mux %q, %s %q", name, x, version, b)
		}
	}
	for show, want := range pgbouncerColumns {
		b, err := consoleExec(ctx, bouncer, show)
		if err != nil {
			t.Errorf("%s on %s: %v", show, version, err)
			continue
		}
		x, err := consoleExec(ctx, mux, show)
		if err != nil {
			t.Errorf("%s on mux: %v", show, err)
			continue
		}
		if b.cols+muxExtraColumns[show] != x.cols {
			t.Errorf("%s columns differ:\n  mux %s\n  %s %s", show, x.cols, version, b.cols)
		}
		if b.cols != want {
			t.Errorf("%s: the pinned table is not %s's:\n  table %s\n  real  %s", show, version, want, b.cols)
		}
	}
	for _, pc := range []*pgconn.PgConn{bouncer, mux} {
		res, err := consoleExec(ctx, pc, "SHOW HELP")
		if err != nil || res.cols != "" {
			t.Errorf("SHOW HELP: %v %+v", err, res)
		}
		if _, err := consoleExec(ctx, pc, "SHOW NOTHING"); sqlstate(err) != "08P01" {
			t.Errorf("invalid command: %v", err)
		}
	}
	// The stats user is refused admin commands by both.
	for _, dsn := range []string{
		fmt.Sprintf("host=%s port=%d user=md5user dbname=pgbouncer sslmode=disable", host, port),
		m.dsn("md5user", "md5pass", "pgbouncer"),
	} {
		pc := connect(dsn)
		_, err := consoleExec(ctx, pc, "PAUSE")
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Message != "admin access needed" {
			t.Errorf("stats user PAUSE: %v", err)
		}
	}
}
