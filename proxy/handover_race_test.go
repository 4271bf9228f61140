//go:build linux

package proxy

import (
	"context"
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/muxpg/mux/internal/handover"
)

// Clients that run transaction after transaction, each message sent as
// soon as the last reply came (pgbench's way), are handed over round after
// round while they do: each one moves in one of its short idle moments,
// whatever is in flight then, and every statement is answered, on one
// process or the other.
func TestHandOverClientsBetweenTransactions(t *testing.T) {
	ta, tb := &laterTB{TB: t}, &laterTB{TB: t}
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() { ta.run(); close(done) }()
		tb.run()
		<-done
	})
	// Event loops: a client of the goroutine driver moves only once
	// parked, which a busy one never is.
	old := startMux(ta, "pool_mode = \"transaction\"\nworkers = 2")
	next := startMux(tb, "pool_mode = \"transaction\"\nworkers = 2")

	const clients = 16
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	conns := make([]*pgconn.PgConn, clients)
	for i := range conns {
		c, err := pgconn.Connect(ctx, old.dsn("muxuser", "muxpass", "muxtest"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		conns[i] = c
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	var txs atomic.Int64
	errs := make(chan error, clients)
	stopClients := sync.OnceFunc(func() { close(stop); wg.Wait() })
	defer stopClients() // before the cleanups close the connections
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := 0; ; n++ {
				select {
				case <-stop:
					errs <- nil
					return
				default:
				}
				for _, q := range []string{"BEGIN", "SELECT 1", "COMMIT"} {
					qctx, qcancel := context.WithTimeout(ctx, 20*time.Second)
					_, err := c.Exec(qctx, q).ReadAll()
					qcancel()
					if err != nil {
						errs <- fmt.Errorf("client %d, transaction %d, %s: %w", i, n, q, err)
						return
					}
				}
				txs.Add(1)
			}
		}()
	}

	// The clients move to and fro: each hand-over runs rounds every
	// millisecond (cmd/mux: every 200) until every client has moved.
	time.Sleep(200 * time.Millisecond) // the clients get going
	from, to := old, next
	for i := 0; i < handOverTrips; i++ {
		sent, took := moveAll(t, from, to)
		if sent != clients || took != clients {
			t.Fatalf("trip %d: sent %d, took %d: want all %d clients moved", i, sent, took, clients)
		}
		from, to = to, from
	}
	time.Sleep(300 * time.Millisecond) // transactions on the new process
	stopClients()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	t.Logf("%d transactions", txs.Load())
}

// handOverTrips is how often TestHandOverClientsBetweenTransactions moves
// its clients.
const handOverTrips = 10

// moveAll hands every client of from over to to, round after round, and
// returns how many from sent and to took.
func moveAll(t *testing.T, from, to *testMux) (sent, took int) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "handover.sock")
	dummy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dummy.Close()
	succs := make(chan *handover.Successor, 1)
	stopOffer, err := handover.Offer(path, []net.Listener{dummy}, handover.Offering{Clients: true},
		func(s *handover.Successor) { succs <- s })
	if err != nil {
		t.Fatal(err)
	}
	defer stopOffer()
	pred, err := handover.Take(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range pred.Listeners {
		ln.Close()
	}
	sentc := make(chan int, 1)
	go func() {
		s := <-succs
		n := 0
		// Within clientTimeout, the successor's wait for each batch.
		deadline := time.Now().Add(20 * time.Second)
		for from.p.loggedIn() > 0 && time.Now().Before(deadline) {
			n += from.p.HandOverClients(s)
			time.Sleep(time.Millisecond)
		}
		s.Close()
		sentc <- n
	}()
	if err := pred.Confirm(true, 0); err != nil {
		t.Fatal(err)
	}
	took, err = pred.ReceiveClients(to.p.AdoptClient)
	if err != nil {
		t.Fatal(err)
	}
	return <-sentc, took
}

// A client whose reply is being written when a hand-over round asks
// stays: the server's reader has let go of the server (under c.mu) and
// writes the reply after, under wmu, so the client looks idle; its socket
// leaving then would lose the reply (COMMIT's, say: the client would wait
// for it for ever). Once the reply is out it moves.
func TestHandOverWaitsForAReplyInFlight(t *testing.T) {
	ta, tb := &laterTB{TB: t}, &laterTB{TB: t}
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() { ta.run(); close(done) }()
		tb.run()
		<-done
	})
	old := startMux(ta, `pool_mode = "transaction"`)
	next := startMux(tb, `pool_mode = "transaction"`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, old.dsn("muxuser", "muxpass", "muxtest"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SELECT 1").ReadAll(); err != nil {
		t.Fatal(err)
	}
	settle(t, old)
	clients := old.p.loggedInClients(nil)
	if len(clients) != 1 {
		t.Fatalf("%d clients, want 1", len(clients))
	}
	c := clients[0]
	// What serverData does between letting go of the server and writing
	// the reply.
	c.mu.Lock()
	c.wmu.Lock()
	c.mu.Unlock()
	sent, took := handOver(t, old, next, 0)
	c.wmu.Unlock()
	if sent != 0 || took != 0 {
		t.Fatalf("sent %d, took %d while a reply was being written: want the client kept", sent, took)
	}
	if _, err := conn.Exec(ctx, "SELECT 1").ReadAll(); err != nil {
		t.Fatalf("the client that stayed: %v", err)
	}
	if sent, took = handOver(t, old, next, 0); sent != 1 || took != 1 {
		t.Fatalf("sent %d, took %d once the reply was out: want the client moved", sent, took)
	}
	res, err := conn.Exec(ctx, "SELECT 2").ReadAll()
	if err != nil || string(res[0].Rows[0][0]) != "2" {
		t.Fatalf("the moved client: %v", err)
	}
	if n := next.p.loggedIn(); n != 1 {
		t.Fatalf("the new mux has %d clients, want 1", n)
	}
}
