package proxy

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/muxpg/mux/config"
)

// withConfig puts in force a copy of m's configuration changed by edit,
// as a reload does, and returns the copy.
func (m *testMux) withConfig(t *testing.T, edit func(c *config.Config)) *config.Config {
	t.Helper()
	cfg := m.cfg.Clone()
	edit(cfg)
	m.reload(t, cfg)
	return cfg
}

func setUser(c *config.Config, name string, edit func(u *config.User)) {
	u := c.Users[name]
	edit(&u)
	c.Users[name] = u
}

func setDatabase(c *config.Config, name string, edit func(db *config.Database)) {
	db := c.Databases[name]
	edit(&db)
	c.Databases[name] = db
}

// A user's query_timeout cancels that user's queries only; the others
// keep the global setting (off).
func TestUserQueryTimeout(t *testing.T) {
	m := startMux(t, "")
	m.withConfig(t, func(c *config.Config) {
		setUser(c, "muxuser", func(u *config.User) { u.QueryTimeout = config.Duration(300 * time.Millisecond) })
	})
	ctx := context.Background()
	mine := m.connect(t)
	start := time.Now()
	_, err := mine.Exec(ctx, "SELECT pg_sleep(5)")
	if got := sqlstate(err); got != "57014" || time.Since(start) > 3*time.Second {
		t.Fatalf("muxuser's long query: %v (SQLSTATE %q) after %v, want 57014 soon after 300ms", err, got, time.Since(start))
	}
	other := m.connectAs(t, "trustuser", "trustpass", "muxtest")
	if _, err := other.Exec(ctx, "SELECT pg_sleep(0.8)"); err != nil {
		t.Fatalf("another user's query, longer than muxuser's query_timeout: %v", err)
	}
}

// A user's idle timeouts override the global ones both ways: shorter for
// one user, longer (so the global one does not apply) for another.
func TestUserIdleTimeouts(t *testing.T) {
	m := startMux(t, `client_idle_timeout = "1s"`)
	m.withConfig(t, func(c *config.Config) {
		setUser(c, "muxuser", func(u *config.User) { u.IdleTransactionTimeout = config.Duration(500 * time.Millisecond) })
		setUser(c, "trustuser", func(u *config.User) {
			u.ClientIdleTimeout = config.Duration(time.Minute)
		})
	})
	ctx := context.Background()
	mine := m.connect(t)
	other := m.connectAs(t, "trustuser", "trustpass", "muxtest")
	for _, conn := range []*pgx.Conn{mine, other} {
		if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Second)
	if _, err := mine.Exec(ctx, "SELECT 1"); sqlstate(err) != "25P03" {
		t.Fatalf("muxuser idle in transaction past its own 500ms: %v, want 25P03", err)
	}
	if _, err := other.Exec(ctx, "COMMIT"); err != nil {
		t.Fatalf("trustuser idle in transaction (no timeout for it): %v", err)
	}
	// Between transactions: muxuser has the global 1s, trustuser 1m.
	mine = m.connect(t)
	time.Sleep(2 * time.Second)
	if _, err := mine.Exec(ctx, "SELECT 1"); sqlstate(err) != "57P05" {
		t.Fatalf("muxuser idle past the global client_idle_timeout: %v, want 57P05", err)
	}
	if _, err := other.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatalf("trustuser idle past the global client_idle_timeout but within its own: %v", err)
	}
}

// transaction_timeout closes a client whose transaction stays open too
// long, idle or running a query, with 25P04; a user's own overrides it.
func TestTransactionTimeout(t *testing.T) {
	m := startMux(t, "transaction_timeout = \"2s\"\ndefault_pool_size = 2")
	m.withConfig(t, func(c *config.Config) {
		setUser(c, "trustuser", func(u *config.User) { u.TransactionTimeout = config.Duration(time.Minute) })
	})
	ctx := context.Background()
	idle := m.connect(t)
	other := m.connectAs(t, "trustuser", "trustpass", "muxtest")
	for _, conn := range []*pgx.Conn{idle, other} {
		if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
			t.Fatal(err)
		}
		// Short queries keep it from being idle in transaction for long;
		// only transaction_timeout can end it.
		for range 5 {
			if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	time.Sleep(3 * time.Second)
	if _, err := idle.Exec(ctx, "SELECT 1"); sqlstate(err) != "25P04" {
		t.Fatalf("transaction open past transaction_timeout: %v (SQLSTATE %q), want 25P04", err, sqlstate(err))
	}
	if _, err := other.Exec(ctx, "COMMIT"); err != nil {
		t.Fatalf("trustuser's transaction within its own transaction_timeout: %v", err)
	}
	// A single statement running longer is a transaction too.
	busy := m.connect(t)
	start := time.Now()
	_, err := busy.Exec(ctx, "SELECT pg_sleep(10)")
	if sqlstate(err) != "25P04" || time.Since(start) > 8*time.Second {
		t.Fatalf("long statement: %v after %v, want 25P04 after about 2s", err, time.Since(start))
	}
	// The servers were rolled back or closed: the next client finds no
	// open transaction.
	next := m.connect(t)
	var inTx bool
	if err := next.QueryRow(ctx, "SELECT pg_current_xact_id_if_assigned() IS NOT NULL").Scan(&inTx); err != nil || inTx {
		t.Fatalf("next client: %v, in transaction %v", err, inTx)
	}
}

// backendPIDs runs n queries on conn, one after another, and returns the
// backend each ran on.
func backendPIDs(t *testing.T, conn *pgx.Conn, n int) []int32 {
	t.Helper()
	var pids []int32
	for range n {
		var pid int32
		if err := conn.QueryRow(context.Background(), "SELECT pg_backend_pid()").Scan(&pid); err != nil {
			t.Fatal(err)
		}
		pids = append(pids, pid)
	}
	return pids
}

// openServers makes the pool of muxuser/muxtest open n servers by holding
// n transactions at once, then ends them.
func openServers(t *testing.T, m *testMux, n int) {
	t.Helper()
	ctx := context.Background()
	var conns []*pgx.Conn
	for range n {
		c := m.connect(t)
		if _, err := c.Exec(ctx, "BEGIN; SELECT 1"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		if _, err := c.Exec(ctx, "COMMIT"); err != nil {
			t.Fatal(err)
		}
	}
}

// With server_round_robin every idle server gets its turn; without, the
// most recently released one serves again (LIFO).
func TestServerRoundRobin(t *testing.T) {
	for _, rr := range []bool{false, true} {
		t.Run("server_round_robin="+strconv.FormatBool(rr), func(t *testing.T) {
			m := startMux(t, "default_pool_size = 3\nserver_round_robin = "+strconv.FormatBool(rr))
			openServers(t, m, 3)
			pids := backendPIDs(t, m.connect(t), 6)
			distinct := map[int32]bool{}
			for _, p := range pids {
				distinct[p] = true
			}
			if !rr {
				if len(distinct) != 1 {
					t.Fatalf("LIFO reuse: backends %v, want one", pids)
				}
				return
			}
			if len(distinct) != 3 || pids[0] != pids[3] || pids[1] != pids[4] || pids[2] != pids[5] {
				t.Fatalf("round robin: backends %v, want the three servers in turn", pids)
			}
		})
	}
}

// A database's server_lifetime closes its servers sooner than the global
// one closes the others'.
func TestDatabaseServerLifetime(t *testing.T) {
	m := startMux(t, "")
	m.withConfig(t, func(c *config.Config) {
		setDatabase(c, "muxtest", func(db *config.Database) { db.ServerLifetime = config.Duration(time.Second) })
	})
	short := m.connect(t)
	long := m.connectAs(t, "benchuser", "benchpass", "bench")
	first := append(backendPIDs(t, short, 1), backendPIDs(t, long, 1)...)
	time.Sleep(2500 * time.Millisecond)
	second := append(backendPIDs(t, short, 1), backendPIDs(t, long, 1)...)
	if first[0] == second[0] {
		t.Errorf("muxtest (server_lifetime 1s): same backend %d after 2.5s", first[0])
	}
	if first[1] != second[1] {
		t.Errorf("bench (global server_lifetime 1h): backend changed %d -> %d", first[1], second[1])
	}
}

// connect_query runs once on every new server before clients use it; an
// error in it is logged and ignored, as in PgBouncer.
func TestConnectQuery(t *testing.T) {
	m := startMux(t, "default_pool_size = 2")
	m.withConfig(t, func(c *config.Config) {
		setDatabase(c, "muxtest", func(db *config.Database) {
			db.ConnectQuery = "SELECT set_config('mux.connected_at', clock_timestamp()::text, false)"
		})
		setDatabase(c, "bench", func(db *config.Database) { db.ConnectQuery = "SELECT 1/0" })
	})
	conn := m.connect(t)
	first := queryString(t, conn, "SELECT current_setting('mux.connected_at', true)")
	if first == "" {
		t.Fatal("connect_query did not run on the server")
	}
	// The same server again: the query ran once, at connect, not per use.
	if again := queryString(t, conn, "SELECT current_setting('mux.connected_at', true)"); again != first {
		t.Errorf("connect_query ran again: %q then %q", first, again)
	}
	// The failing one is ignored: the server serves.
	if got := queryString(t, m.connectAs(t, "benchuser", "benchpass", "bench"), "SELECT 'served'::text"); got != "served" {
		t.Fatal(got)
	}
	// One that leaves a transaction open closes the server instead of
	// lending it.
	m.withConfig(t, func(c *config.Config) {
		setDatabase(c, "muxtest", func(db *config.Database) { db.ConnectQuery = "BEGIN" })
	})
	// (trustuser's pool is new: its first server logs the client in.)
	cctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	bad, err := pgx.Connect(cctx, m.dsn("trustuser", "trustpass", "muxtest"))
	if err == nil {
		_, err = bad.Exec(cctx, "SELECT 1")
		bad.Close(cctx)
	}
	if err == nil || !strings.Contains(err.Error(), "connect_query") {
		t.Fatalf("server left in a transaction by connect_query: %v, want an error naming connect_query", err)
	}
}

// postmasterPID reads the test cluster's postmaster PID.
func postmasterPID(t *testing.T) int {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(cluster.DataDir, "postmaster.pid"))
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(data), "\n", 2)[0]))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

// cancel_wait_timeout gives up a cancel request Postgres does not take:
// with the postmaster stopped, connections to it are queued by the kernel
// and never answered.
func TestCancelWaitTimeout(t *testing.T) {
	m := startMux(t, `cancel_wait_timeout = "1s"`)
	ctx := context.Background()
	conn := m.connect(t)
	if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		_, _ = conn.Exec(ctx, "SELECT pg_sleep(3)")
	}()
	time.Sleep(300 * time.Millisecond) // the query runs
	pm := postmasterPID(t)
	if err := syscall.Kill(pm, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	cont := sync.OnceFunc(func() { _ = syscall.Kill(pm, syscall.SIGCONT) })
	t.Cleanup(cont)
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	_ = conn.PgConn().CancelRequest(cctx)
	took := time.Since(start)
	cont()
	wg.Wait()
	if took < 800*time.Millisecond || took > 4*time.Second {
		t.Fatalf("cancel request answered after %v, want about cancel_wait_timeout (1s)", took)
	}
}

// server_fast_close closes a session-mode client between transactions once
// its server is due to close (RECONNECT), never mid-transaction.
func TestServerFastClose(t *testing.T) {
	for _, on := range []bool{false, true} {
		t.Run("server_fast_close="+strconv.FormatBool(on), func(t *testing.T) {
			m := startMux(t, "pool_mode = \"session\"\nserver_fast_close = "+strconv.FormatBool(on))
			ctx := context.Background()
			idle := m.connect(t)
			inTx := m.connect(t)
			if _, err := idle.Exec(ctx, "SELECT 1"); err != nil {
				t.Fatal(err)
			}
			if _, err := inTx.Exec(ctx, "BEGIN"); err != nil {
				t.Fatal(err)
			}
			consoleTarget{m.p}.Reconnect("muxtest")
			time.Sleep(1500 * time.Millisecond)
			_, err := idle.Exec(ctx, "SELECT 1")
			if !on {
				if err != nil {
					t.Fatalf("without server_fast_close the session goes on: %v", err)
				}
				return
			}
			if sqlstate(err) != "57P01" {
				t.Fatalf("idle session after RECONNECT: %v, want 57P01", err)
			}
			// The open transaction runs to its end, then the client goes.
			if _, err := inTx.Exec(ctx, "SELECT 1"); err != nil {
				t.Fatalf("transaction cut by server_fast_close: %v", err)
			}
			if _, err := inTx.Exec(ctx, "COMMIT"); err != nil {
				t.Fatalf("COMMIT: %v", err)
			}
			time.Sleep(1500 * time.Millisecond)
			if _, err := inTx.Exec(ctx, "SELECT 1"); sqlstate(err) != "57P01" {
				t.Fatalf("after its transaction: %v, want 57P01", err)
			}
		})
	}
}

// SHOW CONFIG lists the settings of embedded groups too, with their
// defaults, as PgBouncer lists transaction_timeout and the rest.
func TestShowConfigReuseSettings(t *testing.T) {
	m := startMux(t, adminTop+"\nserver_round_robin = true\ntransaction_timeout = \"5s\"")
	rows := adminQuery(t, m.adminConn(t, "muxuser", "muxpass"), "SHOW CONFIG")
	for key, want := range map[string][2]string{
		"server_round_robin":  {"true", "false"},
		"transaction_timeout": {"5s", "0s"},
		"cancel_wait_timeout": {"10s", "10s"},
		"server_fast_close":   {"false", "false"},
	} {
		r := rows.find("key", key)
		if r == nil || r["value"] != want[0] || r["default"] != want[1] || r["changeable"] != "yes" {
			t.Errorf("SHOW CONFIG %s: %v, want value %q default %q", key, r, want[0], want[1])
		}
	}
}

// query_wait_timeout: a database's overrides the global one, and a user's
// overrides the database's (PgBouncer 1.25).
func TestQueryWaitTimeoutByDatabaseAndUser(t *testing.T) {
	m := startMux(t, "default_pool_size = 1\nquery_wait_timeout = \"1m\"")
	ctx := context.Background()
	// Logged in first: a login waits for a server too, bounded the same.
	holder, waiter := m.connect(t), m.connect(t)
	trustHolder := m.connectAs(t, "trustuser", "trustpass", "muxtest")
	trustWaiter := m.connectAs(t, "trustuser", "trustpass", "muxtest")
	m.withConfig(t, func(c *config.Config) {
		short, long := config.Duration(300*time.Millisecond), config.Duration(10*time.Second)
		setDatabase(c, "muxtest", func(db *config.Database) { db.QueryWaitTimeout = &short })
		setUser(c, "trustuser", func(u *config.User) { u.QueryWaitTimeout = &long })
	})
	// Each pool's one server is held by an open transaction.
	for _, conn := range []*pgx.Conn{holder, trustHolder} {
		if _, err := conn.Exec(ctx, "BEGIN; SELECT 1"); err != nil {
			t.Fatal(err)
		}
	}

	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	start := time.Now()
	_, err := waiter.Exec(wctx, "SELECT 1")
	if err == nil || !strings.Contains(err.Error(), "query_wait_timeout") || time.Since(start) > 3*time.Second {
		t.Fatalf("muxuser waiting past muxtest's 300ms: %v after %v, want the query_wait_timeout error", err, time.Since(start))
	}
	// trustuser's own 10s outlasts the database's 300ms: served once the
	// holder commits a second later.
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		time.Sleep(time.Second)
		_, _ = trustHolder.Exec(ctx, "COMMIT")
	}()
	_, err = trustWaiter.Exec(wctx, "SELECT 1")
	<-committed
	if err != nil {
		t.Fatalf("trustuser within its own query_wait_timeout: %v", err)
	}
}

// The console's SET changes the reuse settings in force; the pools take
// server_round_robin at once.
func TestConsoleSetReuseSettings(t *testing.T) {
	m := startMux(t, adminTop)
	console := m.adminConn(t, "muxuser", "muxpass")
	queryString(t, m.connect(t), "SELECT 'pool exists'::text")
	adminQuery(t, console, "SET server_round_robin = 1")
	adminQuery(t, console, "SET transaction_timeout = '2.5'")
	adminQuery(t, console, "SET cancel_wait_timeout = '3s'")
	cfg := m.p.config()
	if !cfg.ServerRoundRobin || cfg.TransactionTimeout.D() != 2500*time.Millisecond || cfg.CancelWaitTimeout.D() != 3*time.Second {
		t.Errorf("after SET: %+v", cfg.ServerReuse)
	}
	for _, pl := range m.p.poolsOf("muxtest") {
		if !pl.Config().RoundRobin {
			t.Error("a pool did not take server_round_robin")
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := consoleExec(ctx, console.PgConn(), "SET server_fast_close = maybe"); sqlstate(err) != "22023" ||
		!strings.Contains(err.Error(), "server_fast_close") {
		t.Errorf("invalid boolean: %v, want 22023 naming the key", err)
	}
}
