package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// closedPort returns a loopback port nothing listens on.
func closedPort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	return port
}

// A client waiting for a server that cannot be reached gets NOTICEs with
// the reason every query_wait_notify, then 08006 with the reason when
// query_wait_timeout ends the wait; with either relay driver.
func TestQueryWaitNotifyUnreachableServer(t *testing.T) {
	for _, workers := range []string{"0", "1"} {
		t.Run("workers="+workers, func(t *testing.T) {
			m := startMux(t, fmt.Sprintf(`workers = %s
query_wait_notify = "300ms"
query_wait_timeout = "2s"
server_login_retry = "100ms"

[databases.nowhere]
host = "127.0.0.1"
port = %d
`, workers, closedPort(t)))
			var mu sync.Mutex
			var notices []*pgconn.Notice
			cfg, err := pgconn.ParseConfig(m.dsn("muxuser", "muxpass", "nowhere"))
			if err != nil {
				t.Fatal(err)
			}
			cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
				mu.Lock()
				notices = append(notices, n)
				mu.Unlock()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			began := time.Now()
			conn, err := pgconn.ConnectConfig(ctx, cfg)
			if err == nil {
				_, err = conn.Exec(ctx, "SELECT 1").ReadAll()
				conn.Close(ctx)
			}
			waited := time.Since(began)
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "08006" || !strings.Contains(pe.Message, "connection refused") {
				t.Fatalf("want 08006 naming the refused connection, got %v", err)
			}
			if waited < 2*time.Second {
				t.Errorf("error after %v, before query_wait_timeout", waited)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(notices) < 2 {
				t.Fatalf("%d NOTICEs during a 2s wait with query_wait_notify 300ms, want several", len(notices))
			}
			for _, n := range notices {
				if n.Severity != "NOTICE" || !strings.Contains(n.Message, "cannot be reached") || !strings.Contains(n.Message, "connection refused") {
					t.Errorf("NOTICE %s %q does not give the reason", n.Severity, n.Message)
				}
			}
			t.Logf("%d NOTICEs, the first: %s (hint: %s)", len(notices), notices[0].Message, notices[0].Hint)
		})
	}
}

// A query waiting for a busy pool's only server gets NOTICEs saying so,
// then runs once the server is free; with either relay driver.
func TestQueryWaitNotifyBusyPool(t *testing.T) {
	for _, workers := range []string{"0", "1"} {
		t.Run("workers="+workers, func(t *testing.T) {
			m := startMux(t, fmt.Sprintf(`workers = %s
query_wait_notify = "200ms"

[databases.one]
host = %q
port = %d
dbname = "muxtest"
pool_size = 1
`, workers, cluster.Host, cluster.Port))
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			holder, err := pgconn.Connect(ctx, m.dsn("muxuser", "muxpass", "one"))
			if err != nil {
				t.Fatal(err)
			}
			defer holder.Close(ctx)
			if _, err := holder.Exec(ctx, "BEGIN; SELECT 1").ReadAll(); err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			var notices []string
			cfg, err := pgconn.ParseConfig(m.dsn("muxuser", "muxpass", "one"))
			if err != nil {
				t.Fatal(err)
			}
			cfg.OnNotice = func(_ *pgconn.PgConn, n *pgconn.Notice) {
				mu.Lock()
				notices = append(notices, n.Message)
				mu.Unlock()
			}
			waiter, err := pgconn.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer waiter.Close(ctx)
			done := make(chan error, 1)
			go func() { _, err := waiter.Exec(ctx, "SELECT 2").ReadAll(); done <- err }()
			time.Sleep(700 * time.Millisecond)
			if _, err := holder.Exec(ctx, "COMMIT").ReadAll(); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("the waiting query failed: %v", err)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(notices) == 0 {
				t.Fatal("no NOTICE during a 700ms wait with query_wait_notify 200ms")
			}
			for _, n := range notices {
				if !strings.Contains(n, "all 1 server connections of the pool are in use") {
					t.Errorf("NOTICE %q does not give the reason", n)
				}
			}
		})
	}
}
