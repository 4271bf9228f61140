package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/muxpg/mux/internal/pgtest"
)

// safeBuffer collects a process's output while it runs.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// clientsServed reads the clients_served field of a process's stop line.
func clientsServed(t *testing.T, logs string) int64 {
	t.Helper()
	sc := bufio.NewScanner(strings.NewReader(logs))
	for sc.Scan() {
		var line struct {
			Msg    string `json:"msg"`
			Served int64  `json:"clients_served"`
		}
		if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "mux stopped" {
			return line.Served
		}
	}
	t.Fatalf("no stop line in logs:\n%s", logs)
	return 0
}

// A rolling restart under pgbench -C (a new connection per transaction):
// the new mux takes the listening socket over, the old one drains and
// exits, and not one connection is refused or reset.
func TestRollingRestartUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("a 30 s pgbench run; run without -short")
	}
	cluster := startCluster(t, pgtest.Options{MaxConnections: 100})
	ctx := context.Background()
	if err := cluster.Exec(ctx, "CREATE ROLE bench LOGIN PASSWORD 'benchpw'"); err != nil {
		t.Fatal(err)
	}
	if err := cluster.Exec(ctx, "CREATE DATABASE bench OWNER bench"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	bin := buildMux(t)
	port := freePort(t)
	cfg := filepath.Join(dir, "mux.toml")
	toml := fmt.Sprintf(`listen = ["127.0.0.1:%d"]
log_format = "json"
http_listen = ""
handover_socket = %q
shutdown_timeout = "20s"
[databases.bench]
host = %q
port = %d
pool_size = 20
[users.bench]
password = "benchpw"
`, port, filepath.Join(dir, "handover.sock"), cluster.Host, cluster.Port)
	start := func(name string) (*exec.Cmd, *safeBuffer, <-chan error) {
		cmd, logs, done := startMux(t, bin, cfg, toml)
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(logs.String(), `"msg":"mux started"`) {
			if time.Now().After(deadline) {
				t.Fatalf("%s mux did not start:\n%s", name, logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
		return cmd, logs, done
	}
	_, oldLogs, oldDone := start("old")

	env := append(os.Environ(), "PGHOST=127.0.0.1", fmt.Sprintf("PGPORT=%d", port), "PGUSER=bench",
		"PGPASSWORD=benchpw", "PGDATABASE=bench", "PGSSLMODE=disable")
	run := func(args ...string) (string, string, error) {
		c := exec.Command(cluster.Bin("pgbench"), args...)
		c.Env = env
		var so, se bytes.Buffer
		c.Stdout, c.Stderr = &so, &se
		err := c.Run()
		return so.String(), se.String(), err
	}
	if out, errOut, err := run("-i", "-s", "1", "-q"); err != nil {
		t.Fatalf("pgbench -i: %v\n%s%s", err, out, errOut)
	}
	type result struct {
		out, errOut string
		err         error
	}
	bench := make(chan result, 1)
	benchStart := time.Now()
	go func() {
		o, e, err := run("-C", "-c", "50", "-j", "2", "-T", "30")
		bench <- result{o, e, err}
	}()
	time.Sleep(8 * time.Second)
	newCmd, newLogs, newDone := start("new")
	var oldExit time.Time
	select {
	case err := <-oldDone:
		oldExit = time.Now()
		if err != nil {
			t.Fatalf("old mux exited with %v\n%s", err, oldLogs.String())
		}
	case <-time.After(21 * time.Second):
		t.Fatalf("old mux did not exit after the hand-over\n%s", oldLogs.String())
	}
	res := <-bench
	benchEnd := time.Now()
	t.Logf("pgbench:\n%s", res.out)
	if res.err != nil || strings.Contains(strings.ToLower(res.errOut), "error") || strings.Contains(res.errOut, "aborted") {
		t.Fatalf("pgbench through the restart: %v\n%s", res.err, res.errOut)
	}
	if m := regexp.MustCompile(`number of failed transactions: (\d+)`).FindStringSubmatch(res.out); m == nil || m[1] != "0" {
		t.Fatalf("failed transactions:\n%s", res.out)
	}
	if !oldExit.Before(benchEnd) {
		t.Fatal("the old mux exited only after the run ended")
	}
	t.Logf("old mux exited %v into the run", oldExit.Sub(benchStart).Round(time.Millisecond))
	oldServed := clientsServed(t, oldLogs.String())
	// Stop the new one to read its count.
	if err := newCmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-newDone:
		if err != nil {
			t.Fatalf("new mux exited with %v\n%s", err, newLogs.String())
		}
	case <-time.After(25 * time.Second):
		t.Fatal("new mux did not stop")
	}
	newServed := clientsServed(t, newLogs.String())
	t.Logf("clients served: old %d, new %d", oldServed, newServed)
	if oldServed == 0 || newServed == 0 {
		t.Fatalf("both processes must have served clients (old %d, new %d)", oldServed, newServed)
	}
}
