package proxy

import (
	"context"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/muxpg/mux/config"
)

// serverCount returns how many backends user has open, as Postgres sees
// them.
func serverCount(t *testing.T, user string) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, cluster.SuperConnString("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM pg_stat_activity WHERE usename = $1", user).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func terminate(t *testing.T, pid string) {
	t.Helper()
	if err := cluster.Exec(context.Background(), "SELECT pg_terminate_backend("+pid+")"); err != nil {
		t.Fatal(err)
	}
}

// An idle server that Postgres terminates (FATAL 57P01) is noticed and
// closed while idle; the client's next query runs on a fresh server.
func TestIdleServerTerminatedIsReplaced(t *testing.T) {
	m := startMux(t, "default_pool_size = 1")
	conn := m.connectAs(t, "md5user", "md5pass", "muxtest")
	pid := queryString(t, conn, "SELECT pg_backend_pid()::text")
	terminate(t, pid)
	waitFor(t, "the terminated server to leave the pool", 5*time.Second, func() bool {
		m.p.poolMu.Lock()
		pl := m.p.pools[poolKey{"muxtest", "md5user"}]
		m.p.poolMu.Unlock()
		return pl.Stats().Total == 0
	})
	if got := queryString(t, conn, "SELECT pg_backend_pid()::text"); got == pid {
		t.Fatal("the terminated server was reused")
	}
}

// A server terminated mid-transaction fails only its own client, with a
// connection error; the others carry on.
func TestServerTerminatedMidTransaction(t *testing.T) {
	m := startMux(t, "default_pool_size = 2")
	victim := m.connect(t)
	stop := background(t, m)
	defer stop()
	ctx := context.Background()
	tx, err := victim.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pid string
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()::text").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	terminate(t, pid)
	_, err = tx.Exec(ctx, "SELECT 1")
	if err == nil {
		t.Fatal("query on a terminated server succeeded")
	}
	if code := sqlstate(err); code != "" && code != "57P01" && code != "08006" {
		t.Fatalf("victim got %v (SQLSTATE %q), want 57P01 or 08006", err, code)
	}
}

func TestMinPoolSizeAndIdleTimeout(t *testing.T) {
	m := startMux(t, `min_pool_size = 2
server_idle_timeout = "1s"
default_pool_size = 5`)
	// The pool exists once a client has logged in; it then fills to 2.
	conn := m.connectAs(t, "pwuser", "pwpass", "muxtest")
	waitFor(t, "min_pool_size servers", 10*time.Second, func() bool { return serverCount(t, "pwuser") == 2 })
	// Use 4 servers at once, then let them idle: extra ones are closed
	// after server_idle_timeout, min_pool_size stay.
	ctx := context.Background()
	done := make(chan error, 4)
	var clients []*pgx.Conn
	for i := 0; i < 4; i++ {
		clients = append(clients, m.connectAs(t, "pwuser", "pwpass", "muxtest"))
	}
	for _, c := range clients {
		go func() {
			_, err := c.Exec(ctx, "SELECT pg_sleep(0.3)")
			done <- err
		}()
	}
	for i := 0; i < 4; i++ {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if n := serverCount(t, "pwuser"); n < 4 {
		t.Fatalf("%d servers after 4 concurrent queries", n)
	}
	waitFor(t, "idle servers to close down to min_pool_size", 10*time.Second, func() bool { return serverCount(t, "pwuser") == 2 })
	_ = conn
}

func TestOversizedAndUnknownMessages(t *testing.T) {
	m := startMux(t, `max_message_size = "1MB"`)
	stop := background(t, m)
	defer stop()
	for name, msg := range map[string][]byte{
		"oversized query":      {'Q', 0x40, 0, 0, 0},
		"length below 4":       {'Q', 0, 0, 0, 3},
		"unknown message type": {'y', 0, 0, 0, 4},
	} {
		t.Run(name, func(t *testing.T) {
			raw := dialRaw(t, m, "muxuser", "muxpass", "muxtest")
			if _, err := raw.conn.Write(msg); err != nil {
				t.Fatal(err)
			}
			raw.expectError(t, "08P01")
		})
	}
}

// disable_pqexec: a simple Query gets FATAL 08P01 and the connection
// closes; the extended protocol works, and other clients carry on.
func TestDisablePQExec(t *testing.T) {
	m := startMux(t, "disable_pqexec = true")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ext := m.connect(t)
	var n int
	if err := ext.QueryRow(ctx, "SELECT $1::int", 7).Scan(&n); err != nil || n != 7 {
		t.Fatalf("extended protocol: %d %v", n, err)
	}
	raw := dialRaw(t, m, "muxuser", "muxpass", "muxtest")
	if _, err := raw.conn.Write([]byte{'Q', 0, 0, 0, 13, 'S', 'E', 'L', 'E', 'C', 'T', ' ', '1', 0}); err != nil {
		t.Fatal(err)
	}
	raw.expectError(t, "08P01")
	if err := ext.QueryRow(ctx, "SELECT $1::int", 8).Scan(&n); err != nil || n != 8 {
		t.Fatalf("the other client after the refusal: %d %v", n, err)
	}
}

// expectError reads until an ErrorResponse and checks its SQLSTATE, then
// that mux closed the connection.
func (r *rawClient) expectError(t *testing.T, code string) {
	t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for {
		msg, err := r.fe.Receive()
		if err != nil {
			t.Fatalf("no ErrorResponse: %v", err)
		}
		if er, ok := asErrorResponse(msg); ok {
			if er.Code != code {
				t.Fatalf("SQLSTATE %q (%s), want %q", er.Code, er.Message, code)
			}
			break
		}
	}
	var b [1]byte
	if _, err := r.conn.Read(b[:]); err == nil {
		t.Fatal("mux kept the connection open")
	} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("mux kept the connection open")
	}
}

// Shutdown with no time left ends connected clients with FATAL 57P01.
func TestShutdownEndsClientsWith57P01(t *testing.T) {
	m := startMux(t, "")
	conn := m.connect(t)
	if got := queryString(t, conn, "SELECT 'up'::text"); got != "up" {
		t.Fatal(got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_ = m.p.Shutdown(ctx)
	var s string
	err := conn.QueryRow(context.Background(), "SELECT 'after'::text").Scan(&s)
	if got := sqlstate(err); got != "57P01" {
		t.Fatalf("after shutdown: %v (SQLSTATE %q), want 57P01", err, got)
	}
}

// While draining, connected clients keep working and new ones get 57P03;
// Shutdown returns once the last client has left.
func TestDrainRefusesNewClientsWith57P03(t *testing.T) {
	m := startMux(t, "")
	conn := m.connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.p.Shutdown(ctx) }()
	waitFor(t, "draining", 5*time.Second, m.p.Draining)
	if got := connectErr(t, m.dsn("muxuser", "muxpass", "muxtest")); got != "57P03" {
		t.Fatalf("new client while draining: SQLSTATE %q, want 57P03", got)
	}
	if got := queryString(t, conn, "SELECT 'still here'::text"); got != "still here" {
		t.Fatal(got)
	}
	drainWaitsFor(t, conn, done)
}

// drainWaitsFor checks that a draining Shutdown (its result comes on done)
// waits while conn is connected and returns cleanly once it leaves.
func drainWaitsFor(t *testing.T, conn *pgx.Conn, done <-chan error) {
	t.Helper()
	select {
	case err := <-done:
		t.Fatalf("Shutdown returned (%v) while a client was connected", err)
	case <-time.After(200 * time.Millisecond):
	}
	conn.Close(context.Background())
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Shutdown: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Shutdown did not return after the last client left")
	}
}

// After a hand-over (StopAccepting, then Shutdown), a connection the old
// mux accepted before it stopped accepting is a client like any other: it
// logs in even though its startup packet arrives after the drain began,
// and the drain waits for it. (Refusing it with 57P03 broke pgbench -C
// through a rolling restart.)
func TestHandOverServesConnectionsAlreadyAccepted(t *testing.T) {
	m := startMux(t, "")
	raw, err := net.Dial("tcp", net.JoinHostPort(m.host, strconv.Itoa(m.port)))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the connection accepted", 5*time.Second, func() bool {
		m.p.keysMu.Lock()
		defer m.p.keysMu.Unlock()
		return len(m.p.conns) == 1
	})
	m.p.StopAccepting()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- m.p.Shutdown(ctx) }()
	waitFor(t, "draining", 5*time.Second, m.p.Draining)

	cfg, err := pgx.ParseConfig(m.dsn("muxuser", "muxpass", "muxtest"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DialFunc = func(context.Context, string, string) (net.Conn, error) { return raw, nil }
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("login on a connection accepted before the hand-over: %v (SQLSTATE %q)", err, sqlstate(err))
	}
	if got := queryString(t, conn, "SELECT 'served'::text"); got != "served" {
		t.Fatal(got)
	}
	drainWaitsFor(t, conn, done)
}

// A reload that moves a database's target drains the old servers: the next
// transaction gets a new backend, and the client notices nothing.
func TestReloadMovedTargetDrainsServers(t *testing.T) {
	m := startMux(t, "default_pool_size = 1")
	conn := m.connect(t)
	ctx := context.Background()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var before string
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()::text").Scan(&before); err != nil {
		t.Fatal(err)
	}
	cfg := *m.cfg
	cfg.Databases = map[string]config.Database{}
	for k, v := range m.cfg.Databases {
		cfg.Databases[k] = v
	}
	db := cfg.Databases["muxtest"]
	db.Host = "localhost" // the same Postgres under another name
	cfg.Databases["muxtest"] = db
	m.reload(t, &cfg)
	// The open transaction finishes on its server.
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, conn, "SELECT pg_backend_pid()::text"); got == before {
		t.Fatal("the server of the old target was reused after the reload")
	}
}

// autodb_idle_timeout: a pool reached through "*" is dropped once no
// client has used it for the timeout, with its servers closed; one in use,
// or one with an entry of its own, stays; a login after the drop gets a
// fresh pool. A failed login's pool (no such database) goes too.
func TestIdleWildcardPoolsAreDropped(t *testing.T) {
	m := startMux(t, adminTop+"\n"+`autodb_idle_timeout = "1s"`)
	hasPool := func(db string) bool {
		m.p.poolMu.Lock()
		defer m.p.poolMu.Unlock()
		return m.p.pools[poolKey{db, "muxuser"}] != nil
	}
	backends := func() string {
		return superQuery(t, "SELECT count(*)::text FROM pg_stat_activity WHERE usename = 'muxuser' AND datname = 'postgres'")
	}

	wild := m.connectAs(t, "muxuser", "muxpass", "postgres")
	if got := queryString(t, wild, "SELECT current_database()"); got != "postgres" {
		t.Fatalf("connected to %q", got)
	}
	own := m.connectAs(t, "muxuser", "muxpass", "muxtest")
	queryString(t, own, "SELECT 1")
	own.Close(context.Background())

	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := pgx.Connect(ctx, m.dsn("muxuser", "muxpass", "no_such_db")); sqlstate(err) != "3D000" {
		t.Fatalf("login to a missing database: %v, want 3D000", err)
	}
	waitFor(t, "the failed login's pool to be dropped", 10*time.Second, func() bool { return !hasPool("no_such_db") })

	time.Sleep(2 * time.Second) // past the timeout, with the client still there
	if !hasPool("postgres") {
		t.Fatal("a pool in use was dropped")
	}
	queryString(t, wild, "SELECT 1")
	if !hasPool("muxtest") {
		t.Fatal("the pool of a database with its own entry was dropped")
	}

	// A disabled database keeps its pool (and its name for ENABLE) while
	// disabled, however long it is unused.
	admin := m.adminConn(t, "muxuser", "muxpass")
	if _, err := admin.Exec(ctx, "DISABLE postgres"); err != nil {
		t.Fatal(err)
	}
	wild.Close(context.Background())
	time.Sleep(2 * time.Second)
	if !hasPool("postgres") {
		t.Fatal("the pool of a disabled database was dropped")
	}
	if _, err := admin.Exec(ctx, "ENABLE postgres"); err != nil {
		t.Fatalf("ENABLE after the timeout: %v", err)
	}
	waitFor(t, "the idle wildcard pool to be dropped", 10*time.Second, func() bool { return !hasPool("postgres") })
	waitFor(t, "its servers to close", 10*time.Second, func() bool { return backends() == "0" })
	if !hasPool("muxtest") {
		t.Fatal("the pool of a database with its own entry was dropped")
	}

	again := m.connectAs(t, "muxuser", "muxpass", "postgres")
	if got := queryString(t, again, "SELECT current_database()"); got != "postgres" {
		t.Fatalf("after the drop: connected to %q", got)
	}
	// A database paused by name keeps its name for RESUME once its pool is
	// gone too.
	again.Close(context.Background())
	if _, err := admin.Exec(ctx, "PAUSE postgres"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(2 * time.Second)
	if _, err := admin.Exec(ctx, "RESUME postgres"); err != nil {
		t.Fatalf("RESUME after the timeout: %v", err)
	}
}

// auth_query's lookup pools (one per database name with "*" and no
// auth_dbname, made before the client is authenticated) go once unused
// for autodb_idle_timeout; the next lookup makes a new one.
func TestIdleAuthQueryPoolsAreDropped(t *testing.T) {
	m := startMux(t, authQueryTop+"\n"+`autodb_idle_timeout = "1s"`)
	authPools := func() int {
		m.p.auth.mu.Lock()
		defer m.p.auth.mu.Unlock()
		return len(m.p.auth.pools)
	}
	conn := m.connectAs(t, "aq_md5", "aqmd5pass", "postgres")
	queryString(t, conn, "SELECT 1")
	if authPools() == 0 {
		t.Fatal("no auth_query pool after a lookup")
	}
	waitFor(t, "the idle auth_query pool to be dropped", 10*time.Second, func() bool { return authPools() == 0 })
	if got := connectErr(t, m.dsn("aq_md5", "wrong", "postgres")); got != "28P01" {
		t.Fatalf("wrong password after the drop: SQLSTATE %q, want 28P01", got)
	}
	again := m.connectAs(t, "aq_md5", "aqmd5pass", "postgres")
	queryString(t, again, "SELECT 1")
}
