package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/muxpg/mux/internal/pgtest"
)

// httpGet GETs url and returns the status code and body (0 and the error
// text when nothing answers).
func httpGet(url string) (int, string) {
	client := http.Client{Timeout: 3 * time.Second}
	resp, err := client.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// waitHTTP polls url until it answers code with a body containing want.
func waitHTTP(t *testing.T, url string, code int, want string, logs fmt.Stringer) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, body := httpGet(url)
		if got == code && strings.Contains(body, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s answered %d %q, want %d with %q\n%s", url, got, body, code, want, logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// The daemon serves /healthz, /readyz, /metrics and the status page at
// http_listen; on
// SIGTERM /readyz turns 503 while connected clients drain, and the
// endpoint goes away when mux exits.
func TestHTTPEndpoint(t *testing.T) {
	cluster := startCluster(t, pgtest.Options{})
	dir := t.TempDir()
	bin := buildMux(t)
	port, httpPort := freePort(t), freePort(t)
	cfg := filepath.Join(dir, "mux.toml")
	toml := daemonTOML(port, cluster, fmt.Sprintf(`http_listen = "127.0.0.1:%d"`, httpPort))
	cmd, logs, exited := startMux(t, bin, cfg, toml)

	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	waitHTTP(t, base+"/healthz", http.StatusOK, "ok", logs)
	waitHTTP(t, base+"/readyz", http.StatusOK, "ready", logs)

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=secret dbname=postgres sslmode=disable", port))
	if err != nil {
		t.Fatalf("connect: %v\n%s", err, logs)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	code, body := httpGet(base + "/metrics")
	for _, want := range []string{
		`mux_clients{database="postgres",state="idle",user="postgres"} 1`,
		`mux_queries_total{database="postgres",user="postgres"}`,
		`mux_query_duration_seconds_count{database="postgres",user="postgres"}`,
		"go_goroutines ",
	} {
		if code != http.StatusOK || !strings.Contains(body, want) {
			t.Fatalf("/metrics (%d) lacks %q:\n%s", code, want, body)
		}
	}
	// The status page (http_listen is a loopback address) and its data.
	waitHTTP(t, base+"/", http.StatusOK, "<canvas", logs)
	waitHTTP(t, base+"/status.json", http.StatusOK, `"database":"postgres","user":"postgres"`, logs)

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waitHTTP(t, base+"/readyz", http.StatusServiceUnavailable, "draining", logs)
	waitHTTP(t, base+"/healthz", http.StatusOK, "ok", logs)
	conn.Close(ctx)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("mux exited with %v\n%s", err, logs)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("mux did not exit after the last client left\n%s", logs)
	}
	if code, body := httpGet(base + "/healthz"); code != 0 {
		t.Fatalf("/healthz answered %d %q after mux exited", code, body)
	}
}

// An http_listen address that cannot be bound is a runtime failure.
func TestHTTPListenInUse(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "mux.toml")
	toml := fmt.Sprintf(`listen = ["127.0.0.1:%d"]
http_listen = %q
[databases.app]
[users.app]
password = "x"
`, freePort(t), busy.Addr().String())
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"-config", cfg}, &stdout, &stderr); code != exitRuntime {
		t.Fatalf("exit code %d, want %d\n%s", code, exitRuntime, stderr.String())
	}
	if !strings.Contains(stderr.String(), "http_listen") {
		t.Fatalf("the error does not name http_listen:\n%s", stderr.String())
	}
}

// After a hand-over the new mux serves http_listen once the old one has
// let go of it.
func TestHTTPAfterHandOver(t *testing.T) {
	cluster := startCluster(t, pgtest.Options{})
	dir := t.TempDir()
	bin := buildMux(t)
	port, httpPort := freePort(t), freePort(t)
	cfg := filepath.Join(dir, "mux.toml")
	toml := daemonTOML(port, cluster, fmt.Sprintf(`http_listen = "127.0.0.1:%d"`, httpPort),
		fmt.Sprintf("handover_socket = %q", filepath.Join(dir, "handover.sock")))
	base := fmt.Sprintf("http://127.0.0.1:%d", httpPort)
	_, oldLogs, oldDone := startMux(t, bin, cfg, toml)
	waitHTTP(t, base+"/readyz", http.StatusOK, "ready", oldLogs)

	newCmd, newLogs, newDone := startMux(t, bin, cfg, toml)
	select {
	case err := <-oldDone:
		if err != nil {
			t.Fatalf("old mux exited with %v\n%s", err, oldLogs)
		}
	case <-time.After(15 * time.Second):
		t.Fatalf("old mux did not exit after the hand-over\n%s\nnew:\n%s", oldLogs, newLogs)
	}
	waitHTTP(t, base+"/readyz", http.StatusOK, "ready", newLogs)
	if err := newCmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-newDone:
		if err != nil {
			t.Fatalf("new mux exited with %v\n%s", err, newLogs)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("new mux did not stop\n%s", newLogs)
	}
}
