package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/pgtest"
	"github.com/muxpg/mux/proxy"

	"go.uber.org/zap"
)

// A realistic pgbouncer.ini and userlist convert to a mux configuration
// that passes -check-config, and mux serves the same databases and users
// with it.
func TestImportPgbouncer(t *testing.T) {
	cluster := startCluster(t, pgtest.Options{})
	ctx := context.Background()
	for _, q := range []string{
		"CREATE ROLE app LOGIN PASSWORD 'app-secret'",
		"CREATE ROLE report LOGIN PASSWORD 'report-secret'",
		"CREATE DATABASE appdb OWNER app",
		"CREATE DATABASE reports OWNER report",
	} {
		if err := cluster.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	port := freePort(t)
	ini := fmt.Sprintf(`;; pgbouncer configuration of a typical deployment
[databases]
appdb = host=%[1]s port=%[2]d dbname=appdb pool_size=15
reporting = host=%[1]s port=%[2]d dbname=reports pool_mode=session
* = host=%[1]s port=%[2]d

[users]
report = pool_mode=session

[pgbouncer]
logfile = /var/log/pgbouncer/pgbouncer.log
pidfile = /var/run/pgbouncer/pgbouncer.pid
listen_addr = 127.0.0.1
listen_port = %[3]d
unix_socket_dir =
auth_type = scram-sha-256
auth_file = userlist.txt
admin_users = app
stats_users = report
pool_mode = transaction
server_reset_query = DISCARD ALL
max_client_conn = 500
default_pool_size = 20
min_pool_size = 0
reserve_pool_size = 5
server_lifetime = 3600
server_idle_timeout = 600
server_connect_timeout = 15
server_login_retry = 1
query_wait_timeout = 120
client_idle_timeout = 0
client_login_timeout = 60
ignore_startup_parameters = extra_float_digits
max_prepared_statements = 100
tcp_keepalive = 1
`, cluster.Host, cluster.Port, port)
	if err := os.WriteFile(filepath.Join(dir, "pgbouncer.ini"), []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	userlist := "\"app\" \"app-secret\"\n\"report\" \"report-secret\"\n"
	if err := os.WriteFile(filepath.Join(dir, "userlist.txt"), []byte(userlist), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"import-pgbouncer", filepath.Join(dir, "pgbouncer.ini")}, &out, &errOut); code != exitOK {
		t.Fatalf("import-pgbouncer exited %d: %s", code, errOut.String())
	}
	if !strings.Contains(errOut.String(), "logfile") {
		t.Errorf("notes do not mention logfile:\n%s", errOut.String())
	}
	if strings.Contains(errOut.String(), "reserve_pool_size") {
		t.Errorf("reserve_pool_size is carried, yet noted:\n%s", errOut.String())
	}
	cfgPath := filepath.Join(dir, "mux.toml")
	if err := os.WriteFile(cfgPath, out.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	var checkOut, checkErr bytes.Buffer
	if code := run([]string{"-check-config", cfgPath}, &checkOut, &checkErr); code != exitOK {
		t.Fatalf("-check-config on the converted file: %s\n%s", checkErr.String(), out.String())
	}
	snap, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	cfg := snap.Config
	cfg.HTTPListen = ""
	if cfg.ReservePoolSize != 5 {
		t.Errorf("reserve_pool_size %d, want 5", cfg.ReservePoolSize)
	}
	p, err := proxy.New(snap, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	lns, err := p.Listen()
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Serve(lns[0]) }()
	defer func() {
		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		_ = p.Shutdown(sctx)
		<-done
	}()
	for _, c := range []struct{ user, pw, db, want string }{
		{"app", "app-secret", "appdb", "appdb"},
		{"report", "report-secret", "reporting", "reports"},
		{"app", "app-secret", "postgres", "postgres"}, // through the wildcard
	} {
		cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		conn, err := pgx.Connect(cctx, fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=%s sslmode=disable", port, c.user, c.pw, c.db))
		if err != nil {
			cancel()
			t.Fatalf("%s@%s through the converted config: %v", c.user, c.db, err)
		}
		var got string
		if err := conn.QueryRow(cctx, "SELECT current_database()::text").Scan(&got); err != nil || got != c.want {
			t.Fatalf("%s@%s: current_database %q, %v", c.user, c.db, got, err)
		}
		conn.Close(cctx)
		cancel()
	}
	if mode := cfg.PoolModeFor(cfg.Databases["reporting"], "report"); mode != "session" {
		t.Fatalf("report's pool_mode = %q, want session", mode)
	}
}
