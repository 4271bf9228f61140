package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/muxpg/mux/internal/pgtest"
)

// SIGUSR1 pauses every database as the console's PAUSE does (a query
// waits for a server), and SIGUSR2 resumes: the waiting query then runs.
func TestSignalPauseResume(t *testing.T) {
	cluster := startCluster(t, pgtest.Options{})
	bin := buildMux(t)
	port := freePort(t)
	cmd, logs, _ := startMux(t, bin, filepath.Join(t.TempDir(), "mux.toml"), daemonTOML(port, cluster))
	conn := connectRetry(t, port, logs)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if _, err := conn.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	signalAndWait(t, cmd.Process, syscall.SIGUSR1, "SIGUSR1: pausing", logs)
	done := make(chan error, 1)
	go func() { _, err := conn.Exec(ctx, "SELECT 1"); done <- err }()
	select {
	case err := <-done:
		t.Fatalf("query ran while paused (%v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	signalAndWait(t, cmd.Process, syscall.SIGUSR2, "SIGUSR2: resumed", logs)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("query after SIGUSR2: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("query still waits after SIGUSR2\n%s", logs.String())
	}
}

// signalAndWait sends sig and waits for the log line that says mux acted.
func signalAndWait(t *testing.T, proc *os.Process, sig os.Signal, line string, logs fmt.Stringer) {
	t.Helper()
	if err := proc.Signal(sig); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(logs.String(), line) {
		if time.Now().After(deadline) {
			t.Fatalf("no %q in the logs after %v\n%s", line, sig, logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
}
