package proxy

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Postgres restarted (fast, then killed: immediate) under load: mux stays
// up, queries in flight fail with a connection-class error, and new
// transactions succeed within 2 s of Postgres being back.
func TestPostgresRestartUnderLoad(t *testing.T) {
	for _, mode := range []string{"fast", "immediate"} {
		t.Run(mode, func(t *testing.T) {
			m := startMux(t, "default_pool_size = 5\nserver_login_retry = \"500ms\"")
			ctx := context.Background()
			var stop atomic.Bool
			var lastOK atomic.Int64 // unix nanos of the latest success
			var bad atomic.Value
			var wg sync.WaitGroup
			okAfter := make([]atomic.Int64, 10)
			for w := 0; w < 10; w++ {
				wg.Add(1)
				go func(w int) {
					defer wg.Done()
					var conn *pgx.Conn
					for !stop.Load() {
						if conn == nil {
							cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
							c, err := pgx.Connect(cctx, m.dsn("muxuser", "muxpass", "muxtest"))
							cancel()
							if err != nil {
								time.Sleep(20 * time.Millisecond)
								continue
							}
							conn = c
						}
						qctx, cancel := context.WithTimeout(ctx, 5*time.Second)
						var one int
						err := conn.QueryRow(qctx, "SELECT 1").Scan(&one)
						cancel()
						if err != nil {
							code := sqlstate(err)
							switch {
							case code == "", code[:2] == "08", code[:2] == "57":
							default:
								bad.Store(err)
							}
							conn.Close(ctx)
							conn = nil
							continue
						}
						now := time.Now().UnixNano()
						lastOK.Store(now)
						okAfter[w].Store(now)
						time.Sleep(5 * time.Millisecond)
					}
					if conn != nil {
						conn.Close(ctx)
					}
				}(w)
			}
			time.Sleep(500 * time.Millisecond)
			if err := cluster.Restart(mode); err != nil {
				t.Fatal(err)
			}
			back := time.Now()
			deadline := back.Add(2 * time.Second)
			for {
				all := true
				for i := range okAfter {
					if okAfter[i].Load() < back.UnixNano() {
						all = false
					}
				}
				if all {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("not every client succeeded within 2s of Postgres being back")
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("all clients served again %v after the restart", time.Since(back).Round(time.Millisecond))
			stop.Store(true)
			wg.Wait()
			if err, ok := bad.Load().(error); ok {
				t.Fatalf("a client got an error that is not connection-class: %v", err)
			}
			// Pool counts return to normal.
			waitFor(t, "pool to settle", 5*time.Second, func() bool {
				for _, pi := range m.p.Pools() {
					if pi.ClientsActive != 0 || pi.ClientsWaiting != 0 || len(pi.Servers) > 5 {
						return false
					}
				}
				return true
			})
		})
	}
}

// A backend terminated mid-transaction affects only its own client.
func TestTerminateBackendAffectsOnlyItsClient(t *testing.T) {
	m := startMux(t, "default_pool_size = 3")
	ctx := context.Background()
	victim := m.connect(t)
	stop := background(t, m)
	defer stop()
	tx, err := victim.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var pid string
	if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()::text").Scan(&pid); err != nil {
		t.Fatal(err)
	}
	terminate(t, pid)
	if _, err := tx.Exec(ctx, "SELECT 1"); err == nil {
		t.Fatal("the terminated backend's client did not notice")
	}
	// A new connection for that client works.
	again := m.connect(t)
	if got := queryString(t, again, "SELECT 'back'::text"); got != "back" {
		t.Fatal(got)
	}
}

// Errors that retrying cannot fix reach the client at once, with Postgres's
// own SQLSTATE and message: a wrong server password (28P01) and a role over
// its connection limit (53300).
func TestUnfixableServerErrorsReachClientsAtOnce(t *testing.T) {
	m := startMux(t, `query_wait_timeout = "30s"`)
	db := m.cfg.Databases["muxtest"]
	db.User, db.Password = "muxuser", "not-the-password"
	m.cfg.Databases["wrongpw"] = db
	start := time.Now()
	if got := connectErr(t, m.dsn("muxuser", "muxpass", "wrongpw")); got != "28P01" {
		t.Fatalf("wrong server password: SQLSTATE %q, want 28P01", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v: the error was retried instead of passed on", d)
	}
	// benchuser has CONNECTION LIMIT 10: take all ten directly.
	ctx := context.Background()
	for i := 0; i < 10; i++ {
		c, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=%d user=benchuser password=benchpass dbname=bench sslmode=disable", cluster.Host, cluster.Port))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
	}
	start = time.Now()
	if got := connectErr(t, m.dsn("benchuser", "benchpass", "bench")); got != "53300" {
		t.Fatalf("role over its connection limit: SQLSTATE %q, want 53300", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v: the error was retried instead of passed on", d)
	}
}

// While Postgres is down and then starting up (connection refused, then
// 57P03), a waiting client is retried within query_wait_timeout and served.
func TestClientWaitsThroughPostgresStartup(t *testing.T) {
	m := startMux(t, "query_wait_timeout = \"30s\"\nserver_login_retry = \"200ms\"")
	warm := m.connect(t)
	if got := queryString(t, warm, "SELECT 'warm'::text"); got != "warm" {
		t.Fatal(got)
	}
	warm.Close(context.Background())
	if err := cluster.StopServer(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, m.dsn("muxuser", "muxpass", "muxtest"))
		if err == nil {
			var one int
			err = conn.QueryRow(ctx, "SELECT 1").Scan(&one)
			conn.Close(ctx)
		}
		done <- err
	}()
	time.Sleep(700 * time.Millisecond)
	if err := cluster.StartServer(); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatalf("client waiting through the restart failed: %v", err)
	}
}
