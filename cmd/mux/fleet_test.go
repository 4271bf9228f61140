package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/muxpg/mux/internal/balancer"
	"github.com/muxpg/mux/internal/pgtest"
)

// fleetMember is one mux process of a fleet of two.
type fleetMember struct {
	t          *testing.T
	bin, cfg   string
	toml       string
	port, http int
	cmd        *exec.Cmd
	logs       *safeBuffer
	done       <-chan error
}

func (m *fleetMember) start() {
	m.t.Helper()
	m.cmd, m.logs, m.done = startMux(m.t, m.bin, m.cfg, m.toml)
	deadline := time.Now().Add(15 * time.Second)
	for !m.ready() {
		if time.Now().After(deadline) {
			m.t.Fatalf("mux on port %d did not become ready:\n%s", m.port, m.logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ready reports whether /readyz answers 200, as a readiness probe asks.
func (m *fleetMember) ready() bool {
	resp, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/readyz", m.http))
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// stop sends SIGTERM and waits for a clean exit.
func (m *fleetMember) stop() {
	m.t.Helper()
	if err := m.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		m.t.Fatal(err)
	}
	select {
	case err := <-m.done:
		if err != nil {
			m.t.Fatalf("mux on port %d exited with %v\n%s", m.port, err, m.logs.String())
		}
	case <-time.After(15 * time.Second):
		m.t.Fatalf("mux on port %d did not drain\n%s", m.port, m.logs.String())
	}
}

// The rolling update of examples/kubernetes/fleet, with two mux processes
// (instances 1 and 2, peered) behind a TCP balancer in the Service's
// place, under pgbench: each in turn leaves the balancer (the terminating
// pod leaving the endpoints), drains on SIGTERM while the other serves, is
// started again with the same peer_id and rejoins once /readyz says so.
// No transaction may fail.
//
// pgbench runs with -C, a connection per transaction. A draining mux keeps
// its connected clients until they leave (it never cuts one between
// transactions), and a client a Service gave to a pod stays on that pod
// for its connection's life: a persistent pgbench connection would stay on
// the draining instance until shutdown_timeout ended it with 57P01, which
// pgbench counts as a failure. Reconnecting is how a client moves to a
// ready pod behind a Service, and -C does that after every transaction:
// the faithful model of clients that move (per-request connections, or
// pools with a lifetime under shutdown_timeout; see the example's README).
func TestRollingUpdateUnderPgbench(t *testing.T) {
	if testing.Short() {
		t.Skip("a 16 s pgbench run; run without -short")
	}
	cluster := startCluster(t, pgtest.Options{MaxConnections: 60})
	ctx := context.Background()
	for _, q := range []string{"CREATE ROLE bench LOGIN PASSWORD 'benchpw'", "CREATE DATABASE bench OWNER bench"} {
		if err := cluster.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	bin, dir := buildMux(t), t.TempDir()
	ms := []*fleetMember{{port: freePort(t), http: freePort(t)}, {port: freePort(t), http: freePort(t)}}
	for i, m := range ms {
		other := ms[1-i]
		m.t, m.bin, m.cfg = t, bin, filepath.Join(dir, fmt.Sprintf("mux%d.toml", i+1))
		m.toml = fmt.Sprintf(`listen = ["127.0.0.1:%d"]
http_listen = "127.0.0.1:%d"
log_format = "json"
shutdown_timeout = "10s"
peer_id = %d
[peers.%d]
host = "127.0.0.1"
port = %d
[databases.bench]
host = %q
port = %d
pool_size = 10
[users.bench]
password = "benchpw"
`, m.port, m.http, i+1, 2-i, other.port, cluster.Host, cluster.Port)
		m.start()
	}
	bal, err := balancer.New(net.JoinHostPort("127.0.0.1", strconv.Itoa(ms[0].port)), net.JoinHostPort("127.0.0.1", strconv.Itoa(ms[1].port)))
	if err != nil {
		t.Fatal(err)
	}
	defer bal.Close()

	run := pgbenchVia(cluster, bal.Addr().Port)
	if out, err := run("-i", "-s", "1", "-q"); err != nil {
		t.Fatalf("pgbench -i: %v\n%s", err, out)
	}
	type result struct {
		out string
		err error
	}
	bench := make(chan result, 1)
	go func() {
		out, err := run("-C", "-c", "8", "-j", "2", "-T", "16")
		bench <- result{out, err}
	}()
	for i, m := range ms {
		time.Sleep(3 * time.Second)
		before := bal.Counts()[i]
		bal.SetEnabled(i, false)           // the pod leaves the endpoints
		time.Sleep(300 * time.Millisecond) // preStop: the balancer catches up
		m.stop()
		m.start()
		bal.SetEnabled(i, true)
		t.Logf("instance %d restarted; it had been given %d connections", i+1, before)
	}
	res := <-bench
	t.Logf("pgbench:\n%s", res.out)
	if res.err != nil || strings.Contains(res.out, "aborted") {
		t.Fatalf("pgbench through the rolling update: %v\n%s", res.err, res.out)
	}
	if m := regexp.MustCompile(`number of failed transactions: (\d+)`).FindStringSubmatch(res.out); m == nil || m[1] != "0" {
		t.Fatalf("failed transactions:\n%s", res.out)
	}
	for _, m := range ms {
		if !strings.Contains(m.logs.String(), `"msg":"mux started"`) {
			t.Errorf("restarted mux on port %d logged no start", m.port)
		}
	}
	t.Logf("connections given to instances 1 and 2: %v", bal.Counts())
}

// pgbenchVia returns a runner of pgbench against the balancer at port.
func pgbenchVia(cluster *pgtest.Cluster, port int) func(args ...string) (string, error) {
	env := append(os.Environ(), "PGHOST=127.0.0.1", fmt.Sprintf("PGPORT=%d", port), "PGUSER=bench",
		"PGPASSWORD=benchpw", "PGDATABASE=bench", "PGSSLMODE=disable")
	return func(args ...string) (string, error) {
		c := exec.Command(cluster.Bin("pgbench"), args...)
		c.Env = env
		var out bytes.Buffer
		c.Stdout, c.Stderr = &out, &out
		err := c.Run()
		return out.String(), err
	}
}
