package proxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// drainTop adds a session-mode entry to muxConfig and gives every pool one
// server, so that a client can be made to wait for one.
func drainTop() string {
	return fmt.Sprintf(`default_pool_size = 1

[databases.sess]
host = %q
port = %d
dbname = "muxtest"
pool_mode = "session"
`, cluster.Host, cluster.Port)
}

// Drain with CloseBetweenTransactions (SIGINT): an idle transaction-mode
// client gets 57P01 and is closed at once; a client mid-transaction
// finishes it (COMMIT succeeds) and is closed after; a client waiting for
// a server is refused before what it sent runs; a session-mode client
// stays until it leaves, and the drain returns then.
func TestDrainClosesClientsBetweenTransactions(t *testing.T) {
	m := startMux(t, drainTop())
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	idle := m.connect(t)
	queryString(t, idle, "SELECT 'idle'::text")
	sess := m.connectAs(t, "muxuser", "muxpass", "sess")
	queryString(t, sess, "SELECT 'session'::text")
	busy := m.connect(t)
	mustExec(ctx, t, busy, "CREATE TABLE IF NOT EXISTS drain_t (x int)", "TRUNCATE drain_t", "BEGIN",
		"INSERT INTO drain_t VALUES (1)")
	waiter := m.connect(t)
	waiterErr := make(chan error, 1)
	go func() { _, err := waiter.Exec(ctx, "INSERT INTO drain_t VALUES (2)"); waiterErr <- err }()
	waitFor(t, "the waiter queued", 5*time.Second, func() bool { return m.waitingClients() == 1 })

	done := make(chan error, 1)
	go func() { done <- m.p.Drain(ctx, CloseBetweenTransactions) }()
	start := time.Now()
	got, err := readToEOF(idle, 2*time.Second)
	if err != nil || !strings.Contains(got, "57P01") {
		t.Fatalf("idle client: read %q, %v; want FATAL 57P01 and EOF", got, err)
	}
	t.Logf("idle client closed %v after the drain began", time.Since(start))

	mustExec(ctx, t, busy, "INSERT INTO drain_t VALUES (3)", "COMMIT")
	if err := <-waiterErr; sqlstate(err) != "57P01" {
		t.Errorf("waiting client: %v, want 57P01", err)
	}
	waitFor(t, "the transaction-mode clients gone", 2*time.Second, func() bool { return m.p.loggedIn() == 1 })
	if _, err := busy.Exec(ctx, "SELECT 1"); err == nil {
		t.Error("the client that committed still works")
	}
	if n := queryString(t, sess, "SELECT string_agg(x::text, ',' ORDER BY x) FROM drain_t"); n != "1,3" {
		t.Errorf("drain_t holds %s, want 1,3 (the waiter's insert must not run)", n)
	}
	drainWaitsFor(t, sess, done)
}

func mustExec(ctx context.Context, t *testing.T, conn *pgx.Conn, sqls ...string) {
	t.Helper()
	for _, sql := range sqls {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
	}
}

// readToEOF reads what the client's socket gets until mux closes it.
func readToEOF(conn *pgx.Conn, d time.Duration) (string, error) {
	raw := conn.PgConn().Conn()
	if err := raw.SetReadDeadline(time.Now().Add(d)); err != nil {
		return "", err
	}
	b, err := io.ReadAll(raw)
	if errors.Is(err, io.EOF) {
		err = nil
	}
	return string(b), err
}

// waitingClients counts the clients waiting for a server.
func (m *testMux) waitingClients() int {
	n := 0
	for _, c := range m.p.loggedInClients(nil) {
		c.mu.Lock()
		if c.waiting {
			n++
		}
		c.mu.Unlock()
	}
	return n
}
