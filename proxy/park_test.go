package proxy

import (
	"context"
	"runtime"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// Idle clients give up their goroutine and get one back, with nothing
// lost, when they send again or leave.
func TestIdleClientsPark(t *testing.T) {
	if !(&poller{}).enabled() {
		t.Skip("parking needs epoll (Linux)")
	}
	m := startMux(t, "workers = 0") // parking is the goroutine driver's
	ctx := context.Background()
	const n = 40
	conns := make([]*pgx.Conn, n)
	for i := range conns {
		conns[i] = m.connect(t)
		if got := queryString(t, conns[i], "SELECT 'ok'::text"); got != "ok" {
			t.Fatal(got)
		}
	}
	goroutinesBusy := runtime.NumGoroutine()
	waitFor(t, "clients not parked", 5*time.Second, func() bool { return m.p.poller.count() == n })
	// n relay goroutines gone, the poller's started.
	if g := runtime.NumGoroutine(); g > goroutinesBusy-n+1 {
		t.Errorf("goroutines: %d with %d clients running, %d with them parked", goroutinesBusy, n, g)
	}
	// Parked clients are served at once, in and out of transactions.
	for i, c := range conns {
		tx, err := c.Begin(ctx)
		if err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
		var v int
		if err := tx.QueryRow(ctx, "SELECT $1::int", i).Scan(&v); err != nil || v != i {
			t.Fatalf("client %d: %v %d", i, err, v)
		}
		if err := tx.Commit(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Parked clients that leave are ended (their connection accounted).
	waitFor(t, "clients not parked again", 5*time.Second, func() bool { return m.p.poller.count() == n })
	before := m.p.NumClients()
	for _, c := range conns[:n/2] {
		if err := c.Close(ctx); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "parked clients that left still counted", 5*time.Second, func() bool {
		return m.p.NumClients() == before-n/2 && m.p.poller.count() == n-n/2
	})
	for _, c := range conns[n/2:] {
		c.Close(ctx)
	}
	waitFor(t, "clients left", 5*time.Second, func() bool { return m.p.NumClients() == 0 && m.p.poller.count() == 0 })
}

// client_idle_timeout ends a parked client on time.
func TestParkedClientIdleTimeout(t *testing.T) {
	m := startMux(t, "workers = 0\nclient_idle_timeout = \"2500ms\"")
	conn := m.connect(t)
	if got := queryString(t, conn, "SELECT 'ok'::text"); got != "ok" {
		t.Fatal(got)
	}
	start := time.Now()
	waitFor(t, "client not parked", 2*time.Second, func() bool { return m.p.poller.count() == 1 })
	waitFor(t, "parked client not ended", 5*time.Second, func() bool { return m.p.NumClients() == 0 })
	if d := time.Since(start); d < 2400*time.Millisecond || d > 5*time.Second {
		t.Errorf("parked client ended %v after its last query, want about 2.5s", d)
	}
	_, err := conn.Exec(context.Background(), "SELECT 1")
	if got := sqlstate(err); got != "57P05" {
		t.Fatalf("after idling: %v (SQLSTATE %q), want 57P05", err, got)
	}
}

// A parked listener gets its notifications.
func TestParkedClientGetsNotifications(t *testing.T) {
	m := startMux(t, "workers = 0")
	ctx := context.Background()
	listener := m.connect(t)
	if _, err := listener.Exec(ctx, "LISTEN parked_chan"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "listener not parked", 5*time.Second, func() bool { return m.p.poller.count() == 1 })
	sender := m.connect(t)
	if _, err := sender.Exec(ctx, "NOTIFY parked_chan, 'hello'"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	n, err := listener.WaitForNotification(wctx)
	if err != nil || n.Payload != "hello" {
		t.Fatalf("notification: %v %+v", err, n)
	}
	if got := queryString(t, listener, "SELECT 'still ok'::text"); got != "still ok" {
		t.Fatal(got)
	}
	listener.Close(ctx)
	sender.Close(ctx)
}
