package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/muxpg/mux/internal/pgtest"
)

// Every way of stopping mux that closes clients tells each one FATAL 57P01
// before its socket closes: SIGTERM once shutdown_timeout has passed,
// SIGINT, SIGQUIT and the console's SHUTDOWN; for a client idle between
// transactions and one whose query runs.
func TestStopEndsClientsWith57P01(t *testing.T) {
	cluster := startCluster(t, pgtest.Options{})
	bin := buildMux(t)
	for _, how := range []string{"SIGTERM", "SIGINT", "SIGQUIT", "SHUTDOWN"} {
		t.Run(how, func(t *testing.T) {
			port := freePort(t)
			cmd, logs, exited := startMux(t, bin, filepath.Join(t.TempDir(), "mux.toml"),
				daemonTOML(port, cluster, `shutdown_timeout = "1s"`, `admin_users = ["postgres"]`))
			idle := connectRetry(t, port, logs)
			running := connectRetry(t, port, logs)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			queryDone := make(chan error, 1)
			go func() { _, err := running.Exec(ctx, "SELECT pg_sleep(60)"); queryDone <- err }()
			time.Sleep(300 * time.Millisecond) // the query runs
			stopMux(t, ctx, how, cmd.Process, port)
			select {
			case err := <-exited:
				if err != nil {
					t.Fatalf("mux exited with %v\n%s", err, logs.String())
				}
			case <-time.After(20 * time.Second):
				t.Fatalf("mux still running 20s after %s\n%s", how, logs.String())
			}
			// The FATAL is in the idle client's socket: its next query
			// reads it.
			_, err := idle.Exec(ctx, "SELECT 1")
			if got := sqlstate(err); got != "57P01" {
				t.Errorf("idle client: %v (SQLSTATE %q), want 57P01", err, got)
			}
			if got := sqlstate(<-queryDone); got != "57P01" {
				t.Errorf("client mid-query: SQLSTATE %q, want 57P01", got)
			}
		})
	}
}

// stopMux stops the mux on port how: a signal, or the console's SHUTDOWN.
func stopMux(t *testing.T, ctx context.Context, how string, proc *os.Process, port int) {
	t.Helper()
	sigs := map[string]syscall.Signal{"SIGTERM": syscall.SIGTERM, "SIGINT": syscall.SIGINT, "SIGQUIT": syscall.SIGQUIT}
	if sig, ok := sigs[how]; ok {
		if err := proc.Signal(sig); err != nil {
			t.Fatal(err)
		}
		return
	}
	console, err := pgconn.Connect(ctx, fmt.Sprintf("host=127.0.0.1 port=%d user=postgres password=secret dbname=mux sslmode=disable", port))
	if err != nil {
		t.Fatal(err)
	}
	defer console.Close(ctx)
	_, _ = console.Exec(ctx, "SHUTDOWN").ReadAll()
}

func sqlstate(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return ""
}
