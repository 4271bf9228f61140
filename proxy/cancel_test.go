package proxy

import (
	"context"
	"encoding/binary"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/muxpg/mux/internal/cancelkey"
	"github.com/muxpg/mux/internal/wire"
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

// A CancelRequest may carry a 3.0 key or a longer 3.2 one (PostgreSQL 18:
// up to 256 bytes of secret); an unknown key of either length is dropped
// without a word, a length no version allows is a protocol violation.
func TestCancelRequestLengths(t *testing.T) {
	m := startMux(t, "")
	cancelReq := func(secretLen int) []byte {
		b := make([]byte, 12+secretLen)
		binary.BigEndian.PutUint32(b[0:4], uint32(len(b)))
		binary.BigEndian.PutUint32(b[4:8], wire.CancelRequestCode)
		binary.BigEndian.PutUint32(b[8:12], 1)
		return b
	}
	for _, n := range []int{4, cancelkey.LongSecretLen, cancelkey.MaxSecretLen} {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(m.host, itoa(m.port)), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := conn.Write(cancelReq(n)); err != nil {
			t.Fatal(err)
		}
		var one [1]byte
		if k, err := conn.Read(one[:]); k != 0 || err != io.EOF {
			t.Fatalf("cancel request with a %d-byte secret: %d bytes, %v; want a silent close", n, k, err)
		}
		conn.Close()
	}
	for _, n := range []int{0, cancelkey.MaxSecretLen + 1} {
		if code := rawError(t, m, cancelReq(n)); code != "08P01" {
			t.Fatalf("cancel request with a %d-byte secret: %s, want 08P01", n, code)
		}
	}
}
