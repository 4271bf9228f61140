package proxy

import (
	"context"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// 100 clients on a pool of 5 in transaction mode: 20 LISTEN on channels
// (some inside transactions that commit, some that roll back, some
// UNLISTEN later) while others NOTIFY. Every listener gets exactly the
// notifications of its channels, intact, and nobody is pinned.
func TestListenNotifyFanout(t *testing.T) {
	m := startMux(t, "default_pool_size = 5\nmax_client_conn = 200")
	ctx := context.Background()
	type listener struct {
		conn     *pgx.Conn
		channels []string
		got      []string
	}
	var listeners []*listener
	for i := 0; i < 20; i++ {
		l := &listener{conn: m.connect(t)}
		ch := fmt.Sprintf("ch_%d", i%4)
		switch i % 4 {
		case 0: // plain LISTEN
			if _, err := l.conn.Exec(ctx, "LISTEN "+ch); err != nil {
				t.Fatal(err)
			}
			l.channels = []string{ch}
		case 1: // inside a transaction that commits, with a quoted name
			tx, err := l.conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, `LISTEN "`+ch+`"`); err != nil {
				t.Fatal(err)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
			l.channels = []string{ch}
		case 2: // inside a transaction that rolls back: nothing
			tx, err := l.conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "LISTEN "+ch); err != nil {
				t.Fatal(err)
			}
			if err := tx.Rollback(ctx); err != nil {
				t.Fatal(err)
			}
		case 3: // LISTEN then UNLISTEN: nothing
			if _, err := l.conn.Exec(ctx, "LISTEN "+ch); err != nil {
				t.Fatal(err)
			}
			if _, err := l.conn.Exec(ctx, "UNLISTEN "+ch); err != nil {
				t.Fatal(err)
			}
		}
		listeners = append(listeners, l)
	}
	// 80 senders, 3 notifications each, round-robin over the channels.
	want := map[string][]string{}
	var wg sync.WaitGroup
	var mu sync.Mutex
	errs := make(chan error, 80)
	for i := 0; i < 80; i++ {
		conn := m.connect(t)
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			for k := 0; k < 3; k++ {
				ch := fmt.Sprintf("ch_%d", (i+k)%4)
				payload := fmt.Sprintf("from %d #%d", i, k)
				if _, err := conn.Exec(ctx, "SELECT pg_notify($1, $2)", ch, payload); err != nil {
					errs <- err
					return
				}
				mu.Lock()
				want[ch] = append(want[ch], payload)
				mu.Unlock()
			}
		}(i)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	for i, l := range listeners {
		var expect []string
		for _, ch := range l.channels {
			expect = append(expect, want[ch]...)
		}
		for len(l.got) < len(expect) {
			wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			n, err := l.conn.WaitForNotification(wctx)
			cancel()
			if err != nil {
				t.Fatalf("listener %d (%v): got %d of %d notifications: %v", i, l.channels, len(l.got), len(expect), err)
			}
			if n.Channel != l.channels[0] {
				t.Fatalf("listener %d on %v got a notification for %q", i, l.channels, n.Channel)
			}
			l.got = append(l.got, n.Payload)
		}
		// Nothing more arrives.
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		n, err := l.conn.WaitForNotification(wctx)
		cancel()
		if err == nil {
			t.Fatalf("listener %d (%v) got an extra notification %+v", i, l.channels, n)
		}
		sort.Strings(l.got)
		sort.Strings(expect)
		if fmt.Sprint(l.got) != fmt.Sprint(expect) {
			t.Fatalf("listener %d payloads differ:\n got %v\nwant %v", i, l.got, expect)
		}
	}
	for _, ci := range m.p.Clients() {
		if ci.PinReason != "" {
			t.Fatalf("client %d pinned: %s", ci.ID, ci.PinReason)
		}
	}
}

// With fan-out on, a Query mixing LISTEN with other statements is refused:
// mux cannot run half of it on a pooled server.
func TestListenMixedQueryRefused(t *testing.T) {
	m := startMux(t, "")
	conn := m.connect(t)
	_, err := conn.Exec(context.Background(), "SELECT 1; LISTEN x")
	if got := sqlstate(err); got != "0A000" {
		t.Fatalf("mixed LISTEN: %v (SQLSTATE %q), want 0A000", err, got)
	}
}

// A NOTIFY committed right after LISTEN returns is delivered: mux answers
// LISTEN only once its listening connection has run it.
func TestListenThenNotifyImmediately(t *testing.T) {
	m := startMux(t, "default_pool_size = 2")
	ctx := context.Background()
	l := m.connect(t)
	sender := m.connect(t)
	for i := 0; i < 200; i++ {
		ch := fmt.Sprintf("quick_%d", i%3)
		if _, err := l.Exec(ctx, "UNLISTEN "+ch+"; "); err != nil {
			t.Fatal(err)
		}
		if _, err := l.Exec(ctx, "LISTEN "+ch); err != nil {
			t.Fatal(err)
		}
		if _, err := sender.Exec(ctx, "SELECT pg_notify($1, $2)", ch, fmt.Sprint(i)); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		n, err := l.WaitForNotification(wctx)
		cancel()
		if err != nil {
			t.Fatalf("round %d: notification lost: %v", i, err)
		}
		if n.Payload != fmt.Sprint(i) {
			t.Fatalf("round %d: payload %q", i, n.Payload)
		}
	}
}

// holdGate is a TCP forwarder to the test cluster that, while holding,
// accepts connections and never answers them: a Postgres that cannot be
// reached for new connections while the ones already made keep working.
type holdGate struct {
	ln      net.Listener
	holding atomic.Bool
	mu      sync.Mutex
	held    []net.Conn // accepted while holding
	conns   []net.Conn // every connection, closed at the end
}

// The caller closes it, before the mux using it checks for leaked
// goroutines.
func startHoldGate(t *testing.T) *holdGate {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &holdGate{ln: ln}
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			g.mu.Lock()
			g.conns = append(g.conns, conn)
			if g.holding.Load() {
				g.held = append(g.held, conn) // never answered
				g.mu.Unlock()
				continue
			}
			g.mu.Unlock()
			go func() {
				up, err := net.Dial("tcp", net.JoinHostPort(cluster.Host, strconv.Itoa(cluster.Port)))
				if err != nil {
					conn.Close()
					return
				}
				g.mu.Lock()
				g.conns = append(g.conns, up)
				g.mu.Unlock()
				go func() { _, _ = io.Copy(up, conn); up.Close() }()
				_, _ = io.Copy(conn, up)
				conn.Close()
			}()
		}
	}()
	return g
}

// close stops the gate and closes every connection through it.
func (g *holdGate) close() {
	g.ln.Close()
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, c := range g.conns {
		c.Close()
	}
}

func (g *holdGate) port() int { return g.ln.Addr().(*net.TCPAddr).Port }

// release stops holding and closes the connections it held.
func (g *holdGate) release() {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.holding.Store(false)
	for _, c := range g.held {
		c.Close()
	}
	g.held = nil
}

// A listening connection that cannot be opened (Postgres accepts and never
// answers) holds no lock that others need: the COMMIT that applies a
// client's LISTEN is answered at once, another client's UNLISTEN and
// LISTEN do not wait for the connection attempt, SHOW CLIENTS answers, and
// once Postgres answers again notifications flow.
func TestNotifierUnreachableStallsNobody(t *testing.T) {
	g := startHoldGate(t)
	m := startMux(t, fmt.Sprintf(`server_connect_timeout = "5s"
[databases.gated]
host = "127.0.0.1"
port = %d
dbname = "muxtest"
pool_size = 2
`, g.port()))
	t.Cleanup(g.close) // before the mux's (cleanups run last first)
	ctx := context.Background()
	a := m.connectAs(t, "muxuser", "muxpass", "gated")
	b := m.connectAs(t, "muxuser", "muxpass", "gated")
	// Two servers open (both clients in a transaction at once), so that
	// neither client needs a new one while the gate holds.
	ta, err := a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	tb, err := b.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tx := range []pgx.Tx{ta, tb} {
		if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
			t.Fatal(err)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}

	g.holding.Store(true)
	ta, err = a.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ta.Exec(ctx, "LISTEN gated_a"); err != nil {
		t.Fatal(err)
	}
	committed := make(chan time.Duration, 1)
	go func() {
		start := time.Now()
		if err := ta.Commit(ctx); err != nil {
			t.Error(err)
		}
		committed <- time.Since(start)
	}()
	// The COMMIT has reached mux, which now tries to open the listening
	// connection.
	time.Sleep(300 * time.Millisecond)
	const quick = 2 * time.Second
	timed := func(what string, f func() error) {
		t.Helper()
		start := time.Now()
		err := f()
		if d := time.Since(start); d > quick {
			t.Errorf("%s took %v while the listening connection was being opened", what, d.Round(time.Millisecond))
		}
		if err != nil {
			t.Errorf("%s: %v", what, err)
		}
	}
	timed("SHOW CLIENTS (Proxy.Clients)", func() error { m.p.Clients(); return nil })
	timed("another client's UNLISTEN", func() error { _, err := b.Exec(ctx, "UNLISTEN gated_b"); return err })
	timed("another client's SELECT", func() error { _, err := b.Exec(ctx, "SELECT 1"); return err })
	if d := <-committed; d > quick {
		t.Errorf("COMMIT of a transaction that ran LISTEN took %v while the listening connection was being opened", d.Round(time.Millisecond))
	}

	// Postgres answers again: the attempt in flight fails at once, the
	// next one succeeds and LISTENs on gated_a; a notification gets to a.
	g.release()
	deadline := time.Now().Add(15 * time.Second)
	for {
		if _, err := b.Exec(ctx, "SELECT pg_notify('gated_a', 'hello')"); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		n, err := a.WaitForNotification(wctx)
		cancel()
		if err == nil {
			if n.Channel != "gated_a" || n.Payload != "hello" {
				t.Fatalf("got %+v", n)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no notification once Postgres answered again: %v", err)
		}
	}
}

// A listener that does not read its notifications holds up no other
// listener, and is closed after client_write_timeout.
func TestNotifyStuckListenerStallsNobody(t *testing.T) {
	m := startMux(t, `client_write_timeout = "2s"`)
	ctx := context.Background()
	// The stuck client reads nothing once it listens; a small receive
	// buffer makes mux's writes to it block soon.
	cfg, err := pgx.ParseConfig(m.dsn("muxuser", "muxpass", "muxtest"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(ctx, network, addr)
		if tc, ok := conn.(*net.TCPConn); ok {
			_ = tc.SetReadBuffer(4096)
		}
		return conn, err
	}
	stuck, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stuck.Close(context.Background()) })
	l := m.connect(t)
	sender := m.connect(t)
	for _, c := range []*pgx.Conn{stuck, l} {
		if _, err := c.Exec(ctx, "LISTEN big"); err != nil {
			t.Fatal(err)
		}
	}
	// About 8 MB: more than the stuck client's socket buffers hold.
	const count = 1000
	if _, err := sender.Exec(ctx, "SELECT pg_notify('big', g::text || ' ' || repeat('x', 7900)) FROM generate_series(1, $1) g", count); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < count; i++ {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		n, err := l.WaitForNotification(wctx)
		cancel()
		if err != nil {
			t.Fatalf("listener got %d of %d notifications: %v", i, count, err)
		}
		if want := strconv.Itoa(i+1) + " "; !strings.HasPrefix(n.Payload, want) {
			t.Fatalf("notification %d: payload starts %q", i, n.Payload[:min(len(n.Payload), 10)])
		}
	}
	// The stuck client is gone once its write timed out.
	deadline := time.Now().Add(10 * time.Second)
	for len(m.p.Clients()) > 2 {
		if time.Now().After(deadline) {
			t.Fatalf("stuck listener still connected: %d clients", len(m.p.Clients()))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
