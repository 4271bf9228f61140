package proxy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/muxpg/mux/config"
)

// withEntries reloads m with its configuration changed by edit (on a
// copy whose entry maps edit may change).
func withEntries(t *testing.T, m *testMux, edit func(cfg *config.Config)) {
	t.Helper()
	cfg := m.cfg.Clone()
	edit(cfg)
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m.reload(t, cfg)
}

// tryLogin connects through m and returns the error, closing a
// connection that succeeds when the test ends.
func tryLogin(t *testing.T, m *testMux, user, password, db string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, m.dsn(user, password, db))
	if err == nil {
		t.Cleanup(func() { conn.Close(context.Background()) })
	}
	return conn, err
}

func expectTooMany(t *testing.T, m *testMux, user, password, db, key string) {
	t.Helper()
	_, err := tryLogin(t, m, user, password, db)
	if sqlstate(err) != "53300" || !strings.Contains(err.Error(), key) {
		t.Fatalf("login as %s to %s past %s: %v, want 53300 naming %s", user, db, key, err, key)
	}
}

// max_db_client_connections and max_user_client_connections refuse the
// client beyond them with 53300, per database and per user, and a
// client that leaves frees its place.
func TestClientLimitsRefuse(t *testing.T) {
	m := startMux(t, adminTop)
	t.Run("database", func(t *testing.T) {
		withEntries(t, m, func(cfg *config.Config) {
			db := cfg.Databases["muxtest"]
			db.MaxDBClientConnections = 2
			cfg.Databases["muxtest"] = db
		})
		first := m.connectAs(t, "muxuser", "muxpass", "muxtest")
		m.connectAs(t, "md5user", "md5pass", "muxtest")
		expectTooMany(t, m, "muxuser", "muxpass", "muxtest", "max_db_client_connections")
		m.connectAs(t, "muxuser", "muxpass", "postgres") // another database is not limited
		row := adminQuery(t, m.adminConn(t, "muxuser", "muxpass"), "SHOW DATABASES").find("name", "muxtest")
		if row["max_client_connections"] != "2" || row["current_client_connections"] != "2" {
			t.Fatalf("SHOW DATABASES muxtest: %v, want max_client_connections 2, current_client_connections 2", row)
		}
		first.Close(context.Background())
		waitClients(t, m, "muxtest", 1)
		m.connectAs(t, "muxuser", "muxpass", "muxtest")
	})
	t.Run("user", func(t *testing.T) {
		withEntries(t, m, func(cfg *config.Config) {
			u := cfg.Users["md5user"]
			u.MaxUserClientConnections = 2
			cfg.Users["md5user"] = u
		})
		waitClients(t, m, "muxtest", 0) // the subtest before closed its clients
		m.connectAs(t, "md5user", "md5pass", "muxtest")
		m.connectAs(t, "md5user", "md5pass", "postgres")
		expectTooMany(t, m, "md5user", "md5pass", "postgres", "max_user_client_connections")
		m.connectAs(t, "muxuser", "muxpass", "postgres") // another user is not limited
		row := adminQuery(t, m.adminConn(t, "muxuser", "muxpass"), "SHOW USERS").find("name", "md5user")
		if row["max_user_client_connections"] != "2" || row["current_client_connections"] != "2" {
			t.Fatalf("SHOW USERS md5user: %v, want max_user_client_connections 2, current_client_connections 2", row)
		}
	})
	t.Run("global", func(t *testing.T) {
		withEntries(t, m, func(cfg *config.Config) {
			cfg.Databases = map[string]config.Database{"*": cfg.Databases["*"]}
			cfg.MaxDBClientConnections = 1
		})
		m.connectAs(t, "trustuser", "trustpass", "template1")
		expectTooMany(t, m, "trustuser", "trustpass", "template1", "max_db_client_connections")
	})
}

// waitClients waits until SHOW DATABASES-style counting sees n clients
// of db.
func waitClients(t *testing.T, m *testMux, db string, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := 0
		for _, c := range m.p.Clients() {
			if c.Database == db {
				got++
			}
		}
		if got == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d clients of %s, want %d", got, db, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// max_db_connections and max_user_connections hold across the pools of a
// database or user: a client past them waits, times out with the usual
// query_wait_timeout error if no server frees, and proceeds when one does.
func TestServerLimitsMakeClientsWait(t *testing.T) {
	for _, tc := range []struct {
		name          string
		edit          func(cfg *config.Config)
		holder, other [3]string // user, password, database
	}{
		{"max_db_connections", func(cfg *config.Config) {
			db := cfg.Databases["muxtest"]
			db.MaxDBConnections = 1
			cfg.Databases["muxtest"] = db
		}, [3]string{"muxuser", "muxpass", "muxtest"}, [3]string{"md5user", "md5pass", "muxtest"}},
		{"max_user_connections", func(cfg *config.Config) {
			u := cfg.Users["muxuser"]
			u.MaxUserConnections = 1
			cfg.Users["muxuser"] = u
		}, [3]string{"muxuser", "muxpass", "muxtest"}, [3]string{"muxuser", "muxpass", "postgres"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := startMux(t, `query_wait_timeout = "1500ms"`)
			withEntries(t, m, tc.edit)
			holder := m.connectAs(t, tc.holder[0], tc.holder[1], tc.holder[2])
			other := m.connectAs(t, tc.other[0], tc.other[1], tc.other[2])
			late := m.connectAs(t, tc.other[0], tc.other[1], tc.other[2])
			ctx := context.Background()
			tx, err := holder.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			queryString(t, tx.Conn(), "SELECT 'held'")

			// No server frees: the usual query_wait_timeout error.
			start := time.Now()
			_, err = other.Exec(ctx, "SELECT 1")
			if err == nil || !strings.Contains(err.Error(), "query_wait_timeout") {
				t.Fatalf("query past %s with the server held: %v, want the query_wait_timeout error", tc.name, err)
			}
			if waited := time.Since(start); waited < 1400*time.Millisecond {
				t.Fatalf("refused after %v; a server limit must make the client wait", waited)
			}

			// The held server comes back: the waiting client proceeds.
			done := make(chan error, 1)
			start = time.Now()
			go func() {
				_, err := late.Exec(ctx, "SELECT 1")
				done <- err
			}()
			time.Sleep(400 * time.Millisecond)
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("waiting client after the server came back: %v", err)
			}
			if waited := time.Since(start); waited < 350*time.Millisecond {
				t.Fatalf("served after %v, before the held server was released", waited)
			}
			var open int
			for _, pi := range m.p.Pools() {
				open += len(pi.Servers)
			}
			if open > 1 {
				t.Fatalf("%d servers open, above %s = 1", open, tc.name)
			}
		})
	}
}

// The reserve pool serves a client only after reserve_pool_timeout:
// with pool_size 1 and reserve 1 a second transaction waits about the
// timeout and gets a second server; with reserve 0 it waits for the
// first.
func TestReservePoolAfterTimeoutThroughMux(t *testing.T) {
	for _, reserve := range []int{1, 0} {
		t.Run("reserve_pool_size="+string(rune('0'+reserve)), func(t *testing.T) {
			m := startMux(t, "default_pool_size = 1\nreserve_pool_timeout = \"300ms\"\n"+
				"reserve_pool_size = "+string(rune('0'+reserve)))
			holder, second := m.connect(t), m.connect(t)
			ctx := context.Background()
			tx, err := holder.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			held := queryString(t, tx.Conn(), "SELECT pg_backend_pid()::text")
			committed := make(chan error, 1)
			time.AfterFunc(1500*time.Millisecond, func() { committed <- tx.Commit(ctx) })
			start := time.Now()
			got := queryString(t, second, "SELECT pg_backend_pid()::text")
			waited := time.Since(start)
			if err := <-committed; err != nil {
				t.Fatal(err)
			}
			if reserve == 0 {
				if got != held || waited < 1400*time.Millisecond {
					t.Fatalf("without a reserve: served after %v by backend %s (held: %s); want the held server once released", waited, got, held)
				}
				return
			}
			if got == held || waited < 280*time.Millisecond || waited > 1300*time.Millisecond {
				t.Fatalf("with a reserve: served after %v by backend %s (held: %s); want a second server after about 300ms", waited, got, held)
			}
		})
	}
}

// A user's pool_size overrides the database's: with pool_size 1 for
// muxuser a second transaction of muxuser waits (and times out), while
// another user's pool of the same database keeps the database's size.
func TestUserPoolSize(t *testing.T) {
	m := startMux(t, `query_wait_timeout = "1s"`)
	withEntries(t, m, func(cfg *config.Config) {
		u := cfg.Users["muxuser"]
		u.PoolSize = 1
		cfg.Users["muxuser"] = u
	})
	holder, second := m.connect(t), m.connect(t)
	ctx := context.Background()
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	queryString(t, tx.Conn(), "SELECT 'held'")
	other := m.connectAs(t, "md5user", "md5pass", "muxtest")
	o1, err := other.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	queryString(t, o1.Conn(), "SELECT 'other held'")
	queryString(t, m.connectAs(t, "md5user", "md5pass", "muxtest"), "SELECT 'a second server for md5user'")
	if _, err := second.Exec(ctx, "SELECT 1"); err == nil || !strings.Contains(err.Error(), "query_wait_timeout") {
		t.Fatalf("second muxuser transaction with pool_size 1: %v, want the query_wait_timeout error", err)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	if err := o1.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// A reload that raises max_db_connections lets a waiting client through
// at once, while the server it waited behind is still held.
func TestServerLimitRaisedByReload(t *testing.T) {
	m := startMux(t, `query_wait_timeout = "20s"`)
	setLimit := func(n int) {
		withEntries(t, m, func(cfg *config.Config) {
			db := cfg.Databases["muxtest"]
			db.MaxDBConnections = n
			cfg.Databases["muxtest"] = db
		})
	}
	setLimit(1)
	holder := m.connect(t)
	other := m.connectAs(t, "md5user", "md5pass", "muxtest")
	ctx := context.Background()
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	queryString(t, tx.Conn(), "SELECT 'held'")
	done := make(chan error, 1)
	go func() {
		_, err := other.Exec(ctx, "SELECT 1")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("served past max_db_connections = 1: %v", err)
	case <-time.After(500 * time.Millisecond):
	}
	setLimit(2)
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("raising max_db_connections by a reload did not serve the waiting client")
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
}

// The console's SET changes a global limit as a reload would.
func TestConsoleSetLimit(t *testing.T) {
	m := startMux(t, adminTop)
	console := m.adminConn(t, "muxuser", "muxpass")
	m.connect(t)
	adminQuery(t, console, "SET max_db_client_connections = 1")
	expectTooMany(t, m, "muxuser", "muxpass", "muxtest", "max_db_client_connections = 1")
	if code := adminErr(t, console, "SET reserve_pool_size = -1"); code != "22023" {
		t.Errorf("SET reserve_pool_size = -1: SQLSTATE %s, want 22023", code)
	}
	adminQuery(t, console, "SET max_db_client_connections = 0")
	m.connect(t)
}
