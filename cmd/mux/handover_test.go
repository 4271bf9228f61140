package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/muxpg/mux/internal/fdlimit"
	"github.com/muxpg/mux/internal/pgtest"
)

// handoverIdle is how many idle clients TestHandoverMovesIdleClients
// opens: 200 in the suite; the full run is -handover-idle=1000.
var handoverIdle = flag.Int("handover-idle", 200, "idle clients in TestHandoverMovesIdleClients")

// idleClient is one idle client of the hand-over test and what it set.
type idleClient struct {
	conn *pgconn.PgConn
	tz   string
	stmt string
	add  int
}

// A new mux takes the idle clients over: each keeps its connection, its
// TimeZone and its prepared statement, and works after the old process
// has exited; pgbench clients busy meanwhile finish without a failed
// transaction; a client mid-transaction stays on the old process, and a
// cancel for it that reaches the new process cancels its query there.
func TestHandoverMovesIdleClients(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Postgres, two mux processes and pgbench")
	}
	n := *handoverIdle
	if _, err := fdlimit.Raise(uint64(n) + 500); err != nil {
		t.Logf("open-file limit: %v", err)
	}
	cluster := startCluster(t, pgtest.Options{MaxConnections: 120})
	ctx := context.Background()
	for _, q := range []string{"CREATE ROLE bench LOGIN PASSWORD 'benchpw'", "CREATE DATABASE bench OWNER bench"} {
		if err := cluster.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	dir := t.TempDir()
	bin := buildMux(t)
	port := freePort(t)
	cfg := filepath.Join(dir, "mux.toml")
	toml := fmt.Sprintf(`listen = ["127.0.0.1:%d"]
log_format = "json"
http_listen = ""
handover_socket = %q
shutdown_timeout = "90s"
pool_mode = "transaction"
max_client_conn = %d
[databases.bench]
host = %q
port = %d
pool_size = 30
[users.bench]
password = "benchpw"
`, port, filepath.Join(dir, "handover.sock"), n+200, cluster.Host, cluster.Port)
	start := func(name, want string) (*exec.Cmd, *safeBuffer, <-chan error) {
		cmd, logs, done := startMux(t, bin, cfg, toml)
		waitLogFor(t, name, logs, want, 30*time.Second)
		return cmd, logs, done
	}
	_, oldLogs, oldDone := start("old", `"msg":"mux started"`)
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=bench password=benchpw dbname=bench sslmode=disable", port)

	zones := timeZones(t, ctx, dsn, n)
	idle := openIdleClients(t, ctx, dsn, zones)

	// The client that stays: mid-transaction at the hand-over.
	mid, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer mid.Close(ctx)
	if _, err := mid.Exec(ctx, "BEGIN; SELECT 1").ReadAll(); err != nil {
		t.Fatal(err)
	}

	env := append(os.Environ(), "PGHOST=127.0.0.1", fmt.Sprintf("PGPORT=%d", port), "PGUSER=bench",
		"PGPASSWORD=benchpw", "PGDATABASE=bench", "PGSSLMODE=disable")
	pgbench := func(args ...string) (string, error) {
		c := exec.Command(cluster.Bin("pgbench"), args...)
		c.Env = env
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		err := c.Run()
		return out.String(), err
	}
	if out, err := pgbench("-i", "-s", "1", "-q"); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	type result struct {
		out string
		err error
	}
	bench := make(chan result, 1)
	go func() {
		out, err := pgbench(append([]string{"-c", "50", "-j", "2", "-T", "15"}, benchArgs()...)...)
		bench <- result{out, err}
	}()
	time.Sleep(3 * time.Second)

	sleeping := make(chan error, 1)
	go func() {
		_, err := mid.Exec(ctx, "SELECT pg_sleep(60)").ReadAll()
		sleeping <- err
	}()
	time.Sleep(300 * time.Millisecond)

	newCmd, newLogs, newDone := start("new", `"msg":"mux started"`)
	waitLogFor(t, "old", oldLogs, `"msg":"idle clients handed over to the new mux"`, 30*time.Second)
	moved := logInt(t, oldLogs.String(), "idle clients handed over to the new mux", "clients")
	t.Logf("first round: %s", logLine(oldLogs.String(), "idle clients handed over to the new mux"))
	if moved < n {
		t.Fatalf("moved %d at once: want all %d idle clients\nold:\n%s\nnew:\n%s", moved, n, tail(oldLogs.String()), tail(newLogs.String()))
	}

	// The cancel goes to the listening address: the new process accepts
	// it and forwards it to the old one, which holds the client.
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	err = mid.CancelRequest(cctx)
	cancel()
	if err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-sleeping:
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "57014" {
			t.Fatalf("the cancelled query ended with %v, want 57014", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the cancel did not reach the old process")
	}
	if _, err := mid.Exec(ctx, "ROLLBACK").ReadAll(); err != nil {
		t.Fatalf("the client that stayed: %v", err)
	}
	mid.Close(ctx)

	res := <-bench
	t.Logf("pgbench:\n%s", res.out)
	if res.err != nil {
		t.Fatalf("pgbench through the hand-over: %v\nold:\n%s\nnew:\n%s", res.err, tail(oldLogs.String()), tail(newLogs.String()))
	}
	if m := regexp.MustCompile(`number of failed transactions: (\d+)`).FindStringSubmatch(res.out); m == nil || m[1] != "0" {
		t.Fatalf("failed transactions:\n%s", res.out)
	}
	select {
	case err := <-oldDone:
		if err != nil {
			t.Fatalf("old mux exited with %v\n%s", err, tail(oldLogs.String()))
		}
	case <-time.After(60 * time.Second):
		t.Fatalf("old mux did not exit\n%s", tail(oldLogs.String()))
	}

	// Every client that moved, at once or when it became idle, arrived.
	waitLogFor(t, "new", newLogs, `"msg":"took the idle clients over from the running mux"`, 10*time.Second)
	sent := logInt(t, oldLogs.String(), "hand-over of clients ended", "clients")
	took := logInt(t, newLogs.String(), "took the idle clients over from the running mux", "clients")
	t.Logf("clients moved in all: %d sent, %d taken (%d idle at first, the rest pgbench's and the one mid-transaction)", sent, took, n)
	t.Logf("old: %s", logLine(oldLogs.String(), "hand-over of clients ended"))
	if os.Getenv("HANDOVER_DEBUG") != "" {
		t.Logf("old logs:\n%s", tail(oldLogs.String()))
	}
	if took != sent || sent < n {
		t.Fatalf("sent %d, taken %d, want at least %d", sent, took, n)
	}

	// The old process is gone: every idle client is served by the new one.
	checkIdleClients(t, ctx, idle)
	for _, c := range idle {
		c.conn.Close(ctx)
	}
	if err := newCmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-newDone:
		if err != nil {
			t.Fatalf("new mux exited with %v\n%s", err, tail(newLogs.String()))
		}
	case <-time.After(30 * time.Second):
		t.Fatal("new mux did not stop")
	}
}

// timeZones returns n time zone names, distinct as far as Postgres has
// them.
func timeZones(t *testing.T, ctx context.Context, dsn string, n int) []string {
	t.Helper()
	c, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	res := c.ExecParams(ctx, "SELECT name FROM pg_timezone_names WHERE name NOT LIKE 'posix%' ORDER BY name", nil, nil, nil, nil).Read()
	if res.Err != nil {
		t.Fatal(res.Err)
	}
	zones := make([]string, n)
	for i := range zones {
		zones[i] = string(res.Rows[i%len(res.Rows)][0])
	}
	return zones
}

// openIdleClients connects one client per zone, each with its TimeZone set
// and a statement prepared, and leaves them idle.
func openIdleClients(t *testing.T, ctx context.Context, dsn string, zones []string) []*idleClient {
	t.Helper()
	clients := make([]*idleClient, len(zones))
	var wg sync.WaitGroup
	errs := make(chan error, len(zones))
	sem := make(chan struct{}, 20)
	for i, tz := range zones {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := pgconn.Connect(ctx, dsn)
			if err != nil {
				errs <- err
				return
			}
			ic := &idleClient{conn: c, tz: tz, stmt: "add_" + strconv.Itoa(i), add: i}
			clients[i] = ic
			t.Cleanup(func() { c.Close(context.Background()) })
			if _, err := c.Exec(ctx, "SET TimeZone = '"+tz+"'").ReadAll(); err != nil {
				errs <- err
				return
			}
			if _, err := c.Prepare(ctx, ic.stmt, fmt.Sprintf("SELECT $1::int + %d", i), nil); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("opening the idle clients: %v", err)
	}
	checkIdleClients(t, ctx, clients)
	return clients
}

// checkIdleClients runs each client's checks: a query, SHOW TimeZone and
// its prepared statement.
func checkIdleClients(t *testing.T, ctx context.Context, clients []*idleClient) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(clients))
	sem := make(chan struct{}, 20)
	for _, c := range clients {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			errs <- c.check(ctx)
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	var first error
	for err := range errs {
		if err != nil {
			if first == nil {
				first = err
			}
			failed++
		}
	}
	if failed > 0 {
		t.Fatalf("%d of %d idle clients failed; first: %v", failed, len(clients), first)
	}
}

func (c *idleClient) check(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if _, err := c.conn.Exec(ctx, "SELECT 1").ReadAll(); err != nil {
		return fmt.Errorf("%s: SELECT 1: %w", c.stmt, err)
	}
	res, err := c.conn.Exec(ctx, "SHOW TimeZone").ReadAll()
	if err != nil {
		return fmt.Errorf("%s: SHOW TimeZone: %w", c.stmt, err)
	}
	if got := string(res[0].Rows[0][0]); got != c.tz {
		return fmt.Errorf("%s: TimeZone %q, want %q", c.stmt, got, c.tz)
	}
	r := c.conn.ExecPrepared(ctx, c.stmt, [][]byte{[]byte("1")}, nil, nil).Read()
	if r.Err != nil {
		return fmt.Errorf("%s: execute: %w", c.stmt, r.Err)
	}
	if got, want := string(r.Rows[0][0]), strconv.Itoa(1+c.add); got != want {
		return fmt.Errorf("%s: answered %s, want %s", c.stmt, got, want)
	}
	return nil
}

// waitLogFor waits until logs hold want.
func waitLogFor(t *testing.T, name string, logs *safeBuffer, want string, limit time.Duration) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !strings.Contains(logs.String(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("%s mux: no %s in its logs:\n%s", name, want, tail(logs.String()))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// logInt reads the integer field key of the log line whose message is msg.
func logInt(t *testing.T, logs, msg, key string) int {
	t.Helper()
	re := regexp.MustCompile(`"msg":"` + regexp.QuoteMeta(msg) + `".*"` + key + `":(\d+)`)
	m := re.FindStringSubmatch(logs)
	if m == nil {
		t.Fatalf("no %q line with %s in:\n%s", msg, key, tail(logs))
	}
	v, _ := strconv.Atoi(m[1])
	return v
}

// logLine is the log line whose message is msg.
func logLine(logs, msg string) string {
	for _, l := range strings.Split(logs, "\n") {
		if strings.Contains(l, `"msg":"`+msg+`"`) {
			return l
		}
	}
	return ""
}

// tail is the end of a long log.
func tail(s string) string {
	if len(s) > 6000 {
		return "…" + s[len(s)-6000:]
	}
	return s
}

// handoverRate, when not 0, limits pgbench's rate (-R) in
// TestHandoverMovesIdleClients, so its clients are often between
// transactions at the hand-over and some move mid-run; 0 keeps all 50
// busy.
var handoverRate = flag.Int("handover-rate", 200, "pgbench -R in TestHandoverMovesIdleClients (0: as fast as it goes)")

func benchArgs() []string {
	if *handoverRate > 0 {
		return []string{"-R", strconv.Itoa(*handoverRate)}
	}
	return nil
}
