package proxy

import (
	"context"
	"fmt"
	"sort"
	"sync"
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
