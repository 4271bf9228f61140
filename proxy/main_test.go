package proxy

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/leakcheck"
	"github.com/muxpg/mux/internal/pgtest"
)

// cluster is the throwaway Postgres every test in this package talks to.
var cluster *pgtest.Cluster

// Roles created in the cluster. benchuser has CONNECTION LIMIT 10 so that a
// pool opening more than pool_size servers fails loudly.
const setupSQL = `
CREATE ROLE muxuser LOGIN PASSWORD 'muxpass';
CREATE ROLE benchuser LOGIN PASSWORD 'benchpass' CONNECTION LIMIT 10;
CREATE ROLE pwuser LOGIN PASSWORD 'pwpass';
CREATE ROLE trustuser LOGIN;
SET password_encryption = 'md5';
CREATE ROLE md5user LOGIN PASSWORD 'md5pass';
CREATE ROLE aq_md5 LOGIN PASSWORD 'aqmd5pass';
SET password_encryption = 'scram-sha-256';
CREATE ROLE authq_super SUPERUSER LOGIN PASSWORD 'authqpass';
CREATE ROLE aq_scram LOGIN PASSWORD 'aqscrampass';
CREATE ROLE aq_expired LOGIN PASSWORD 'aqexpiredpass' VALID UNTIL '2000-01-01';
CREATE ROLE aq_nologin NOLOGIN PASSWORD 'aqnologinpass';
CREATE SCHEMA evil;
CREATE VIEW evil.pg_authid AS SELECT 'aq_expired'::name AS rolname, 'aqexpiredpass'::text AS rolpassword, NULL::timestamptz AS rolvaliduntil, true AS rolcanlogin;
GRANT USAGE ON SCHEMA evil TO PUBLIC;
`

func TestMain(m *testing.M) {
	flag.Parse()
	if f := flag.Lookup("test.fuzzworker"); f != nil && f.Value.String() == "true" {
		// A fuzz worker runs only the fuzz target, which needs no
		// cluster; the coordinator (which has one) would never stop it.
		os.Exit(m.Run())
	}
	cluster = pgtest.MustStart(pgtest.Options{
		MaxConnections: 300,
		HBA: []string{
			"host all md5user 127.0.0.1/32 md5",
			"host all aq_md5 127.0.0.1/32 md5",
			"host all pwuser 127.0.0.1/32 password",
			"host all trustuser 127.0.0.1/32 trust",
		},
	})
	code := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, q := range []string{
			setupSQL,
			"CREATE DATABASE muxtest OWNER muxuser",
			"CREATE DATABASE bench OWNER benchuser",
			"GRANT ALL ON DATABASE muxtest TO PUBLIC",
			"GRANT ALL ON SCHEMA public TO PUBLIC",
		} {
			if err := cluster.Exec(ctx, q); err != nil {
				fmt.Fprintln(os.Stderr, "test setup:", err)
				return 1
			}
		}
		return m.Run()
	}()
	_ = cluster.Stop()
	os.Exit(code)
}

// testMux is a mux serving on a free loopback port for one test.
type testMux struct {
	t    testing.TB
	p    *Proxy
	cfg  *config.Config
	host string
	port int
	done chan struct{}
}

// muxConfig returns the TOML for a mux in front of the test cluster. top is
// inserted among the top-level keys.
func muxConfig(top string) string {
	listen := `listen = ["127.0.0.1:0"]`
	if strings.Contains(top, "listen =") {
		listen = ""
	}
	if w := os.Getenv("MUX_TEST_WORKERS"); w != "" && !strings.Contains(top, "workers =") {
		// The whole suite against the other relay driver.
		listen += "\nworkers = " + w
	}
	return fmt.Sprintf(`
%s
%s

[databases.muxtest]
host = %q
port = %d

[databases.bench]
host = %q
port = %d
user = "benchuser"
password = "benchpass"

[databases."*"]
host = %q
port = %d

[users.muxuser]
password = "muxpass"

[users.benchuser]
password = "benchpass"

[users.md5user]
password = "md5pass"

[users.pwuser]
password = "pwpass"

[users.trustuser]
password = "trustpass"

[users.authq_super]
password = "authqpass"
`, listen, top, cluster.Host, cluster.Port, cluster.Host, cluster.Port, cluster.Host, cluster.Port)
}

// startMux starts mux with muxConfig(top) and stops it (checking for leaked
// goroutines) when the test ends.
func startMux(t testing.TB, top string) *testMux {
	t.Helper()
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	if testing.Verbose() {
		log = zaptest.NewLogger(t, zaptest.Level(zap.InfoLevel))
	}
	return startMuxLog(t, top, log)
}

// startMuxLog is startMux logging to log.
func startMuxLog(t testing.TB, top string, log *zap.Logger) *testMux {
	t.Helper()
	cfg, err := config.Parse([]byte(muxConfig(top)))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	p, err := New(resolve(t, cfg), log)
	if err != nil {
		t.Fatal(err)
	}
	lns, err := p.Listen()
	if err != nil {
		t.Fatal(err)
	}
	m := &testMux{t: t, p: p, cfg: cfg, done: make(chan struct{})}
	for _, ln := range lns {
		if addr, ok := ln.Addr().(*net.TCPAddr); ok && m.host == "" {
			m.host, m.port = addr.IP.String(), addr.Port
		}
	}
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.Serve(ln)
		}()
	}
	go func() {
		wg.Wait()
		close(m.done)
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
		<-m.done
		leakcheck.Check(t, 5*time.Second)
	})
	return m
}

// resolve reads the files cfg names (config.Resolve).
func resolve(t testing.TB, cfg *config.Config) *config.Snapshot {
	t.Helper()
	s, err := config.Resolve(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// reload puts cfg in force, with the files it names read again.
func (m *testMux) reload(t testing.TB, cfg *config.Config) {
	t.Helper()
	if err := m.p.Reload(resolve(t, cfg)); err != nil {
		t.Fatal(err)
	}
}

// dsn returns a libpq keyword DSN for a client of m.
func (m *testMux) dsn(user, password, db string, extra ...string) string {
	s := fmt.Sprintf("host=%s port=%d user='%s' password='%s' dbname='%s' sslmode=disable",
		m.host, m.port, user, password, db)
	if len(extra) > 0 {
		s += " " + strings.Join(extra, " ")
	}
	return s
}

// connect opens a pgx connection through m as muxuser to muxtest.
func (m *testMux) connect(t testing.TB, extra ...string) *pgx.Conn {
	t.Helper()
	return m.connectAs(t, "muxuser", "muxpass", "muxtest", extra...)
}

func (m *testMux) connectAs(t testing.TB, user, password, db string, extra ...string) *pgx.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, m.dsn(user, password, db, extra...))
	if err != nil {
		t.Fatalf("connect through mux as %s: %v", user, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// sqlstate returns the SQLSTATE of a Postgres error, or "" if err is not one.
func sqlstate(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}

// queryString runs a one-value query.
func queryString(t testing.TB, conn *pgx.Conn, sql string, args ...any) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var s string
	if err := conn.QueryRow(ctx, sql, args...).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}
