package proxy

import (
	"context"
	"errors"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// serveOthers runs n short queries on a fresh client and fails the test if
// they do not all finish within limit: what a stalled loop would cost its
// other clients.
func serveOthers(t *testing.T, m *testMux, n int, limit time.Duration) {
	t.Helper()
	other := m.connect(t)
	defer other.Close(context.Background())
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	for i := range n {
		var v int
		if err := other.QueryRow(ctx, "SELECT $1::int", i).Scan(&v); err != nil || v != i {
			t.Fatalf("another client's query %d while one client stalls: %v", i, err)
		}
	}
}

// A client that stops reading a large result is back-pressure: its reply
// waits (and its server is not read) while the loop goes on serving every
// other client; once it reads again it gets every byte.
func TestLoopSlowReaderStallsNobody(t *testing.T) {
	m := startMux(t, "workers = 1\npool_mode = \"transaction\"")
	slow := dialRaw(t, m, "muxuser", "muxpass", "muxtest")
	const rows, width = 300, 100000 // 30 MB: far more than socket buffers hold
	slow.fe.Send(&pgproto3.Query{String: "SELECT repeat('x', 100000) FROM generate_series(1, 300)"})
	if err := slow.fe.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond) // mux has filled the slow client's socket

	serveOthers(t, m, 50, 10*time.Second)

	_ = slow.conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	got := 0
	for {
		msg, err := slow.fe.Receive()
		if err != nil {
			t.Fatalf("slow client after %d rows: %v", got, err)
		}
		switch msg := msg.(type) {
		case *pgproto3.RowDescription:
		case *pgproto3.DataRow:
			if len(msg.Values) != 1 || len(msg.Values[0]) != width {
				t.Fatalf("row %d: %d values", got, len(msg.Values))
			}
			got++
		case *pgproto3.CommandComplete:
			if got != rows {
				t.Fatalf("got %d rows, want %d", got, rows)
			}
		case *pgproto3.ReadyForQuery:
			return
		default:
			t.Fatalf("unexpected %T", msg)
		}
	}
}

// A client that pipelines far more than it reads fills its own socket and
// then its server's: mux stops reading it (its server write finishes on a
// goroutine) and serves everyone else meanwhile; every reply arrives in
// order once it reads.
func TestLoopPipelineFloodStallsNobody(t *testing.T) {
	m := startMux(t, "workers = 1\npool_mode = \"transaction\"")
	flood := dialRaw(t, m, "muxuser", "muxpass", "muxtest")
	const n = 20000 // about 22 MB of replies
	var buf []byte
	for range n {
		buf, _ = (&pgproto3.Query{String: "SELECT repeat('y', 1000)"}).Encode(buf)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	var werr error
	go func() {
		defer wg.Done()
		_ = flood.conn.SetWriteDeadline(time.Now().Add(60 * time.Second))
		_, werr = flood.conn.Write(buf) // blocks once mux stops reading
	}()
	time.Sleep(500 * time.Millisecond)

	serveOthers(t, m, 50, 10*time.Second)

	_ = flood.conn.SetReadDeadline(time.Now().Add(60 * time.Second))
	ready := 0
	for ready < n {
		msg, err := flood.fe.Receive()
		if err != nil {
			t.Fatalf("after %d replies: %v", ready, err)
		}
		switch msg := msg.(type) {
		case *pgproto3.ReadyForQuery:
			ready++
		case *pgproto3.DataRow:
			if len(msg.Values[0]) != 1000 {
				t.Fatalf("reply %d: value of %d bytes", ready, len(msg.Values[0]))
			}
		case *pgproto3.ErrorResponse:
			t.Fatalf("reply %d: %s", ready, msg.Message)
		}
	}
	wg.Wait()
	if werr != nil {
		t.Fatal(werr)
	}
}

// Events born outside a client's loop reach it: a cancel request (routed
// by the login goroutine), KILL from the console for a client holding a
// server and for one queued for it, each on either of two loops; clients
// of other databases carry on.
func TestLoopCrossLoopEvents(t *testing.T) {
	m := startMux(t, adminTop+"\nworkers = 2\npool_mode = \"transaction\"\ndefault_pool_size = 1")
	ctx := context.Background()

	// Cancel: four clients spread over both loops, each cancelled.
	for i := range 4 {
		c := m.connect(t)
		go func() {
			time.Sleep(300 * time.Millisecond)
			_ = c.PgConn().CancelRequest(ctx)
		}()
		start := time.Now()
		_, err := c.Exec(ctx, "SELECT pg_sleep(20)")
		if got := sqlstate(err); got != "57014" || time.Since(start) > 10*time.Second {
			t.Fatalf("client %d: pg_sleep after a cancel: %v (%v)", i, err, time.Since(start))
		}
		if got := queryString(t, c, "SELECT 'after cancel'::text"); got != "after cancel" {
			t.Fatal(got)
		}
		c.Close(ctx)
	}
	other := m.connect(t)
	if got := queryString(t, other, "SELECT 'ok'::text"); got != "ok" {
		t.Fatal(got)
	}

	// KILL: one bench client holds the only server (in a transaction),
	// another waits for it.
	holder := m.connectAs(t, "benchuser", "benchpass", "bench")
	waiter := m.connectAs(t, "benchuser", "benchpass", "bench")
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	waitErr := make(chan error, 1)
	go func() {
		_, err := waiter.Exec(ctx, "SELECT 2")
		waitErr <- err
	}()
	waitFor(t, "a client waiting for the bench server", 5*time.Second, func() bool {
		for _, c := range m.p.loggedInClients(nil) {
			c.mu.Lock()
			w := c.waiting && c.database == "bench"
			c.mu.Unlock()
			if w {
				return true
			}
		}
		return false
	})
	admin := m.adminConn(t, "muxuser", "muxpass")
	if _, err := admin.Exec(ctx, "KILL bench"); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-waitErr:
		if got := sqlstate(err); got != "57P01" && !isClosed(err) {
			t.Fatalf("waiting client after KILL: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a client waiting for a server outlived KILL")
	}
	if _, err := tx.Exec(ctx, "SELECT 3"); err == nil {
		t.Fatal("a client holding a server outlived KILL")
	}
	if got := queryString(t, other, "SELECT 'still ok'::text"); got != "still ok" {
		t.Fatal(got)
	}
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || err != nil && (strings.Contains(err.Error(), "EOF") || strings.Contains(err.Error(), "closed"))
}

// In steady state a loop relays a transaction without allocating: the
// whole test process's allocations are counted while an external pgbench
// (simple and extended protocol, 10 clients sharing a pool of 4, so that
// most transactions wait for a server) runs through mux.
func TestLoopRelayDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("the race detector allocates")
	}
	m := startMux(t, "workers = 1\npool_mode = \"transaction\"\ndefault_pool_size = 4")
	script := t.TempDir() + "/select.sql"
	if err := os.WriteFile(script, []byte("SELECT 1;\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := pgEnv(m.host, m.port, "muxuser", "muxpass", "muxtest")
	for _, mode := range []string{"simple", "extended"} {
		args := []string{"-n", "-f", script, "-M", mode, "-c", "10", "-j", "2"}
		// Warm up: servers connected, buffers and waiters made.
		if _, stderr, err := runTool(t, time.Minute, "", env, "pgbench", append(args, "-T", "1")...); err != nil {
			t.Fatalf("pgbench: %v\n%s", err, stderr)
		}
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		out, stderr, err := runTool(t, time.Minute, "", env, "pgbench", append(args, "-t", "2000")...)
		runtime.ReadMemStats(&after)
		if err != nil {
			t.Fatalf("pgbench: %v\n%s", err, stderr)
		}
		if !strings.Contains(out, "number of transactions actually processed: 20000") {
			t.Fatalf("pgbench did not run 20,000 transactions:\n%s", out)
		}
		perTx := float64(after.Mallocs-before.Mallocs) / 20000
		t.Logf("%s: %.3f allocations per transaction (%d in all)", mode, perTx, after.Mallocs-before.Mallocs)
		// The background (timers, the sweeper, pgbench's process start
		// seen through os/exec) allocates a little, whatever the load.
		if perTx > 0.2 {
			t.Errorf("%s: %.2f allocations per transaction, want none in steady state", mode, perTx)
		}
	}
}

// A client whose notifications fill its socket (the notifier's writer then
// holds the client's write lock in a blocking write) sends a query: its
// reply reaches the loop, which must queue it rather than wait for the
// lock, so the loop's other clients carry on; the client gets its reply
// once it reads.
func TestLoopNotifierWriteStallsNobody(t *testing.T) {
	m := startMux(t, "workers = 1\npool_mode = \"transaction\"\nclient_write_timeout = \"20s\"")
	ctx := context.Background()
	// A small receive buffer, set before connecting: shrinking it on a
	// connection that advertised a larger window stalls TCP itself.
	stuck := dialRawWith(t, m, "muxuser", "muxpass", "muxtest", &net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		return rc.Control(func(fd uintptr) {
			_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 16384)
		})
	}})
	stuck.fe.Send(&pgproto3.Query{String: "LISTEN big"})
	if err := stuck.fe.Flush(); err != nil {
		t.Fatal(err)
	}
	stuck.expect(t, "CommandComplete", "ReadyForQuery")
	sender := m.connect(t)
	if _, err := sender.Exec(ctx, "SELECT pg_notify('big', g::text || ' ' || repeat('x', 7900)) FROM generate_series(1, 1000) g"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond) // the notifications fill the socket
	stuck.fe.Send(&pgproto3.Query{String: "SELECT 'the reply'::text"})
	if err := stuck.fe.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)

	serveOthers(t, m, 20, 5*time.Second)

	// The stuck client reads: notifications, and its reply.
	_ = stuck.conn.SetReadDeadline(time.Now().Add(20 * time.Second))
	notes, replied := 0, false
	for !replied || notes < 1000 {
		msg, err := stuck.fe.Receive()
		if err != nil {
			t.Fatalf("after %d notifications (reply seen: %v): %v", notes, replied, err)
		}
		switch msg := msg.(type) {
		case *pgproto3.NotificationResponse:
			notes++
		case *pgproto3.DataRow:
			if string(msg.Values[0]) != "the reply" {
				t.Fatalf("reply %q", msg.Values[0])
			}
		case *pgproto3.ReadyForQuery:
			replied = true
		}
	}
}
