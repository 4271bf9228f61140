package proxy

import (
	"context"
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
