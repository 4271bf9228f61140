package proxy

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Shutdown with no time left ends with FATAL 57P01, promptly, the clients
// it would otherwise have closed without a word: one still logging in
// while it waits for an unreachable server, one whose query waits for a
// busy pool, one whose query runs on a server.
func TestShutdownEndsWaitingClientsWith57P01(t *testing.T) {
	for _, workers := range []string{"0", "1"} {
		t.Run("workers="+workers, func(t *testing.T) {
			m := startMux(t, fmt.Sprintf(`workers = %s
query_wait_notify = "100ms"

[databases.nowhere]
host = "127.0.0.1"
port = %d

[databases.one]
host = %q
port = %d
dbname = "muxtest"
pool_size = 1
`, workers, closedPort(t), cluster.Host, cluster.Port))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			results := map[string]chan error{"logging in": make(chan error, 1), "waiting": make(chan error, 1), "running": make(chan error, 1)}
			go func() {
				conn, err := pgconn.Connect(ctx, m.dsn("muxuser", "muxpass", "nowhere"))
				if err == nil {
					conn.Close(ctx)
				}
				results["logging in"] <- err
			}()
			running, err := pgconn.Connect(ctx, m.dsn("muxuser", "muxpass", "one"))
			if err != nil {
				t.Fatal(err)
			}
			defer running.Close(ctx)
			waiting, err := pgconn.Connect(ctx, m.dsn("muxuser", "muxpass", "one"))
			if err != nil {
				t.Fatal(err)
			}
			defer waiting.Close(ctx)
			go func() { _, err := running.Exec(ctx, "SELECT pg_sleep(60)").ReadAll(); results["running"] <- err }()
			time.Sleep(300 * time.Millisecond)
			go func() { _, err := waiting.Exec(ctx, "SELECT 1").ReadAll(); results["waiting"] <- err }()
			time.Sleep(500 * time.Millisecond) // every client now waits, or runs its query

			began := time.Now()
			sctx, scancel := context.WithCancel(context.Background())
			scancel()
			_ = m.p.Shutdown(sctx)
			if took := time.Since(began); took > 10*time.Second {
				t.Errorf("Shutdown took %v", took)
			}
			for name, ch := range results {
				select {
				case err := <-ch:
					if got := sqlstate(err); got != "57P01" {
						t.Errorf("%s client: %v (SQLSTATE %q), want 57P01", name, err, got)
					}
				case <-time.After(10 * time.Second):
					t.Errorf("%s client: no answer 10s after Shutdown", name)
				}
			}
		})
	}
}
