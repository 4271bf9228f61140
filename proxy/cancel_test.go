package proxy

import (
	"context"
	"sync"
	"testing"
	"time"
)

func TestCancelRunningQuery(t *testing.T) {
	m := startMux(t, "default_pool_size = 3")
	victim := m.connect(t)
	stop := background(t, m)
	defer stop()

	errc := make(chan error, 1)
	started := time.Now()
	go func() {
		_, err := victim.Exec(context.Background(), "SELECT pg_sleep(30)")
		errc <- err
	}()
	time.Sleep(300 * time.Millisecond) // let the query reach the server
	sent := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := victim.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if got := sqlstate(err); got != "57014" {
			t.Fatalf("cancelled query returned %v (SQLSTATE %q), want 57014", err, got)
		}
		if d := time.Since(sent); d > time.Second {
			t.Fatalf("query stopped %v after the cancel, want under 1s", d)
		}
		t.Logf("cancelled after %v (query ran %v)", time.Since(sent), time.Since(started))
	case <-time.After(10 * time.Second):
		t.Fatal("query was not cancelled")
	}
	// The victim's session carries on.
	if got := queryString(t, victim, "SELECT 'alive'::text"); got != "alive" {
		t.Fatal(got)
	}
}

// A cancel that arrives as the client's query finishes must never hit the
// next client's query on the same server.
func TestLateCancelDoesNotHitNextClient(t *testing.T) {
	m := startMux(t, "default_pool_size = 1")
	a := m.connect(t)
	b := m.connect(t)
	ctx := context.Background()
	for i := 0; i < 30; i++ {
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			// a's query may or may not be cancelled: either is fine.
			_, _ = a.Exec(ctx, "SELECT pg_sleep(0.02)")
		}()
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * time.Millisecond)
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			_ = a.PgConn().CancelRequest(cctx)
		}()
		wg.Wait()
		// b now runs on the same (only) server.
		if _, err := b.Exec(ctx, "SELECT pg_sleep(0.05)"); err != nil {
			t.Fatalf("iteration %d: next client's query failed: %v", i, err)
		}
	}
}

// A cancel for a client that holds no server is dropped.
func TestCancelIdleClientIsDropped(t *testing.T) {
	m := startMux(t, "default_pool_size = 1")
	a := m.connect(t)
	b := m.connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := a.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Exec(ctx, "SELECT pg_sleep(0.3)"); err != nil {
		t.Fatalf("b's query failed after a's idle cancel: %v", err)
	}
}
