package main

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/muxpg/mux/internal/pgtest"
)

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// The built binary serves a real Postgres, and SIGTERM drains: it waits
// for the connected client to leave, then exits 0.
func TestDaemonServesAndDrainsOnSIGTERM(t *testing.T) {
	cluster := startCluster(t, pgtest.Options{})

	dir := t.TempDir()
	bin := buildMux(t)
	port := freePort(t)
	cfg := filepath.Join(dir, "mux.toml")
	toml := daemonTOML(port, cluster)
	cmd, logs, exited := startMux(t, bin, cfg, toml)

	conn := connectRetry(t, port, logs)
	ctx := context.Background()
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("query through the daemon: %v", err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Draining: the connected client keeps working, new ones are refused.
	time.Sleep(200 * time.Millisecond)
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("connected client failed during the drain: %v", err)
	}
	select {
	case err := <-exited:
		t.Fatalf("mux exited (%v) while a client was still connected", err)
	default:
	}
	conn.Close(ctx)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("mux exited with %v\n%s", err, logs.String())
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("mux did not exit after the last client left\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"msg":"mux stopped"`) {
		t.Fatalf("JSON logs lack the stop line:\n%s", logs.String())
	}
}

// connectRetry connects to the mux on port as postgres, retrying while it
// comes up.
func connectRetry(t *testing.T, port int, logs fmt.Stringer) *pgx.Conn {
	t.Helper()
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=secret dbname=postgres sslmode=disable", port)
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		conn, err := pgx.Connect(ctx, dsn)
		cancel()
		if err == nil {
			return conn
		}
		if time.Now().After(deadline) {
			t.Fatalf("mux did not come up: %v\n%s", err, logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// SIGINT drains too, but closes a transaction-mode client between
// transactions (FATAL 57P01) instead of waiting for it to leave, and then
// exits 0, long before shutdown_timeout.
func TestDaemonSIGINTClosesClientsBetweenTransactions(t *testing.T) {
	cluster := startCluster(t, pgtest.Options{})
	bin := buildMux(t)
	port := freePort(t)
	toml := daemonTOML(port, cluster, `shutdown_timeout = "20s"`)
	cmd, logs, exited := startMux(t, bin, filepath.Join(t.TempDir(), "mux.toml"), toml)
	conn := connectRetry(t, port, logs)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
		t.Fatalf("COMMIT of the transaction under way at SIGINT: %v", err)
	}
	start := time.Now()
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("mux exited with %v\n%s", err, logs.String())
		}
		t.Logf("mux exited %v after the COMMIT", time.Since(start))
	case <-time.After(5 * time.Second):
		t.Fatalf("mux did not exit after closing its client\n%s", logs.String())
	}
	if _, err := conn.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("the client still works after mux exited")
	}
	if !strings.Contains(logs.String(), `"close_between_transactions":true`) {
		t.Errorf("logs lack the drain's mode:\n%s", logs.String())
	}
}

// A SIGTERM that arrives the moment mux accepts connections (an
// orchestrator stopping a replica it just started) drains and exits 0: the
// signal handler is in place before anything listens. No Postgres is
// needed: nobody logs in.
func TestSIGTERMAsSoonAsListening(t *testing.T) {
	bin := buildMux(t)
	dir := t.TempDir()
	for i := range 5 {
		port := freePort(t)
		cfg := filepath.Join(dir, fmt.Sprintf("mux%d.toml", i))
		toml := fmt.Sprintf(`listen = ["127.0.0.1:%d"]
http_listen = "127.0.0.1:%d"
handover_socket = %q
[databases.app]
[users.app]
password = "x"
`, port, freePort(t), filepath.Join(dir, fmt.Sprintf("handover%d.sock", i)))
		cmd, logs, exited := startMux(t, bin, cfg, toml)
		addr := fmt.Sprintf("127.0.0.1:%d", port)
		deadline := time.Now().Add(10 * time.Second)
		for {
			c, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("mux did not listen: %v\n%s", err, logs)
			}
			time.Sleep(100 * time.Microsecond)
		}
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-exited:
			if err != nil {
				t.Fatalf("round %d: mux exited with %v\n%s", i, err, logs)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("round %d: mux did not stop\n%s", i, logs)
		}
	}
}
