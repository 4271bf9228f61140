package hatest

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/faultproxy"
	"github.com/muxpg/mux/internal/pgtest"
	"github.com/muxpg/mux/metrics"
	"github.com/muxpg/mux/proxy"
)

// The pair every test uses, each behind a fault proxy. Tests run in file
// order on it, and TestFailover (last) promotes the replica, so the
// package runs once per process: -count above 1 is refused.
var (
	primary, replica     *pgtest.Cluster
	primaryFP, replicaFP *faultproxy.Proxy
)

func TestMain(m *testing.M) {
	flag.Parse()
	if c := flag.Lookup("test.count"); c != nil && c.Value.String() != "1" {
		fmt.Fprintln(os.Stderr, "hatest: the tests share one primary/replica pair that TestFailover promotes: run them with -count=1")
		os.Exit(2)
	}
	var err error
	primary, replica, err = pgtest.StartPair(pgtest.Options{MaxConnections: 100})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer primary.Stop()
		defer replica.Stop()
		if primaryFP, err = faultproxy.Start(net.JoinHostPort(primary.Host, fmt.Sprint(primary.Port))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer primaryFP.Close()
		if replicaFP, err = faultproxy.Start(net.JoinHostPort(replica.Host, fmt.Sprint(replica.Port))); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer replicaFP.Close()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := primary.Exec(ctx, "CREATE TABLE writes (id serial PRIMARY KEY, at timestamptz DEFAULT now())"); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := replica.WaitReplay(ctx, primary); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// haConfig is mux's configuration: app (read-write) and app_ro (standby)
// over both hosts, through their fault proxies, with short checks.
func haConfig(extra string) string {
	hosts := fmt.Sprintf(`[{host = "127.0.0.1", port = %d, role = "auto"}, {host = "127.0.0.1", port = %d, role = "auto"}]`,
		primaryFP.Port(), replicaFP.Port())
	return fmt.Sprintf(`
listen = ["127.0.0.1:0"]
http_listen = ""
auth_type = "scram-sha-256"
server_connect_timeout = "1s"
server_login_retry = "100ms"
query_wait_timeout = "10s"
host_check_interval = "200ms"
host_check_timeout = "500ms"
host_retry_max = "1s"
admin_users = ["alice"]
%s

[databases.app]
dbname = "postgres"
user = "postgres"
hosts = %s
target_session_attrs = "read-write"

[databases.app_ro]
dbname = "postgres"
user = "postgres"
hosts = %s
target_session_attrs = "standby"

[databases.app_session]
dbname = "postgres"
user = "postgres"
hosts = %s
pool_mode = "session"

[users.alice]
password = "alice"
`, extra, hosts, hosts, hosts)
}

// testMux is a mux serving haConfig on a loopback port.
type testMux struct {
	p    *proxy.Proxy
	port int
	http *metrics.Server
}

func startMux(t *testing.T, extra string) *testMux {
	t.Helper()
	cfg, err := config.Parse([]byte(haConfig(extra)))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	snap, err := config.Resolve(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.New(snap, zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel)))
	if err != nil {
		t.Fatal(err)
	}
	lns, err := p.Listen()
	if err != nil {
		t.Fatal(err)
	}
	m := &testMux{p: p}
	cfg.HTTPListen = "127.0.0.1:0"
	m.http = metrics.NewServer(cfg, p, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)))
	if err := m.http.Start(); err != nil {
		t.Fatal(err)
	}
	m.http.SetListening(true)
	var wg sync.WaitGroup
	for _, ln := range lns {
		if a, ok := ln.Addr().(*net.TCPAddr); ok && m.port == 0 {
			m.port = a.Port
		}
		wg.Add(1)
		go func() { defer wg.Done(); _ = p.Serve(ln) }()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = m.http.Shutdown(ctx)
		_ = p.Shutdown(ctx)
		wg.Wait()
	})
	return m
}

// dsn is a connection string to mux for database db.
func (m *testMux) dsn(db, extra string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d dbname=%s user=alice password=alice sslmode=disable %s", m.port, db, extra)
}

// ask runs one query through mux on a new connection and returns the
// first value.
func (m *testMux) ask(ctx context.Context, db, sql string) (string, error) {
	conn, err := pgconn.Connect(ctx, m.dsn(db, ""))
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	return value(ctx, conn, sql)
}

func value(ctx context.Context, conn *pgconn.PgConn, sql string) (string, error) {
	res := conn.ExecParams(ctx, sql, nil, nil, nil, nil).Read()
	if res.Err != nil {
		return "", res.Err
	}
	if len(res.Rows) == 0 {
		return "", nil
	}
	return string(res.Rows[0][0]), nil
}

// eventually retries f until it returns nil or d passes.
func eventually(t *testing.T, d time.Duration, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %v: %v", what, d, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// get fetches path from mux's HTTP endpoint.
func (m *testMux) get(path string) (int, string) {
	resp, err := http.Get("http://" + m.http.Addr().String() + path)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
