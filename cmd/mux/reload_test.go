package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/muxpg/mux/internal/pgtest"
)

// showRows runs an admin console SHOW and returns its rows keyed by the
// value of column key.
func showRows(t *testing.T, dsn, show, key string) map[string]map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("admin console: %v", err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, show, pgx.QueryExecModeSimpleProtocol)
	if err != nil {
		t.Fatalf("%s: %v", show, err)
	}
	defer rows.Close()
	out := map[string]map[string]string{}
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		row := map[string]string{}
		for i, fd := range rows.FieldDescriptions() {
			row[fd.Name] = fmt.Sprint(vals[i])
		}
		out[row[key]] = row
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("%s: %v", show, err)
	}
	return out
}

// SIGHUP applies a new pool size and a new database while a client keeps
// querying, without failing any of its queries; an invalid file is refused
// and the running configuration kept.
func TestReloadOnSIGHUP(t *testing.T) {
	cluster := startCluster(t, pgtest.Options{})
	dir := t.TempDir()
	bin := buildMux(t)
	port := freePort(t)
	cfgPath := filepath.Join(dir, "mux.toml")
	write := func(poolSize int, extra string) {
		toml := fmt.Sprintf(`listen = ["127.0.0.1:%d"]
log_format = "json"
http_listen = ""
admin_users = ["postgres"]
[databases.postgres]
host = %q
port = %d
pool_size = %d
%s
[users.postgres]
password = "secret"
`, port, cluster.Host, cluster.Port, poolSize, extra)
		if err := os.WriteFile(cfgPath, []byte(toml), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(3, "")
	cmd := exec.Command(bin, "-config", cfgPath)
	logs := &safeBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		_ = cmd.Wait()
	}()
	dsn := func(db string) string {
		return fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=secret dbname=%s sslmode=disable", port, db)
	}
	var conn *pgx.Conn
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err = pgx.Connect(ctx, dsn("postgres"))
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("mux did not come up: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	defer conn.Close(context.Background())

	var stop atomic.Bool
	var queries, failures atomic.Int64
	var wg sync.WaitGroup
	// Runs before the deferred conn.Close, also when the test fails early.
	defer func() {
		stop.Store(true)
		wg.Wait()
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !stop.Load() {
			var n int
			if err := conn.QueryRow(context.Background(), "SELECT 1").Scan(&n); err != nil {
				failures.Add(1)
				t.Errorf("query during reload: %v", err)
				return
			}
			queries.Add(1)
		}
	}()
	time.Sleep(300 * time.Millisecond)

	if got := showRows(t, dsn("pgbouncer"), "SHOW DATABASES", "name")["postgres"]["pool_size"]; got != "3" {
		t.Fatalf("pool_size before reload = %q, want 3", got)
	}
	write(7, fmt.Sprintf("[databases.added]\nhost = %q\nport = %d\ndbname = \"postgres\"\n", cluster.Host, cluster.Port))
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logs, "configuration reloaded")
	dbs := showRows(t, dsn("pgbouncer"), "SHOW DATABASES", "name")
	if got := dbs["postgres"]["pool_size"]; got != "7" {
		t.Fatalf("pool_size after reload = %q, want 7 (%v)", got, dbs)
	}
	if _, ok := dbs["added"]; !ok {
		t.Fatalf("SHOW DATABASES lacks the added database: %v", dbs)
	}
	// The new database serves clients.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	added, err := pgx.Connect(ctx, dsn("added"))
	if err != nil {
		t.Fatalf("added database: %v", err)
	}
	added.Close(ctx)
	if _, ok := showRows(t, dsn("pgbouncer"), "SHOW POOLS", "database")["added"]; !ok {
		t.Fatal("SHOW POOLS lacks the added database's pool")
	}

	// An invalid file is refused; the running configuration stays.
	if err := os.WriteFile(cfgPath, []byte("pool_mode = \"sometimes\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	waitLog(t, logs, "reload refused")
	if got := showRows(t, dsn("pgbouncer"), "SHOW DATABASES", "name")["postgres"]["pool_size"]; got != "7" {
		t.Fatalf("after a refused reload pool_size = %q, want 7", got)
	}
	time.Sleep(200 * time.Millisecond)
	stop.Store(true)
	wg.Wait()
	if failures.Load() != 0 || queries.Load() == 0 {
		t.Fatalf("%d queries, %d failed", queries.Load(), failures.Load())
	}
	t.Logf("%d queries ran through two reloads", queries.Load())
}

func waitLog(t *testing.T, logs *safeBuffer, msg string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(logs.String(), msg) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in logs:\n%s", msg, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
