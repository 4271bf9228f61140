//go:build linux

package proxy

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/handover"
	"github.com/muxpg/mux/internal/wire"
)

// handOver runs a hand-over from old to next in this process, as two mux
// processes do it (cmd/mux): next asks at the socket, old sends its idle
// clients, at most limit (0: no limit). It returns how many old sent and
// next took. A next that is nil confirms and then drops the exchange, as
// a successor that fails would.
func handOver(t *testing.T, old, next *testMux, limit int) (sent, took int) {
	t.Helper()
	settle(t, old)
	path := filepath.Join(t.TempDir(), "handover.sock")
	cancelPath := CancelSocketPath(path)
	cln, err := net.Listen("unix", cancelPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cln.Close() })
	go old.p.ServeCancels(cln)
	// The listener handed over is a stand-in: both muxes keep their own.
	dummy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer dummy.Close()
	succs := make(chan *handover.Successor, 1)
	stop, err := handover.Offer(path, []net.Listener{dummy}, handover.Offering{Clients: true, CancelAddr: cancelPath},
		func(s *handover.Successor) { succs <- s })
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	pred, err := handover.Take(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, ln := range pred.Listeners {
		ln.Close()
	}
	sentc := make(chan int, 1)
	dropped := make(chan struct{})
	go func() {
		s := <-succs
		if next == nil {
			<-dropped
		}
		sentc <- old.p.HandOverClients(s)
		s.Close()
	}()
	if err := pred.Confirm(true, limit); err != nil {
		t.Fatal(err)
	}
	if next == nil {
		pred.Close()
		close(dropped)
		return <-sentc, 0
	}
	next.p.SetPredecessor(pred.CancelAddr)
	took, err = pred.ReceiveClients(next.p.AdoptClient)
	if err != nil {
		t.Fatal(err)
	}
	return <-sentc, took
}

// An idle client moves with its TimeZone, prepared statement and cancel
// key; a client mid-transaction stays, and a cancel for it sent to the new
// mux reaches it; a client whose database the new mux lacks is ended with
// 57P01 saying so.
func TestHandOverIdleClients(t *testing.T) {
	ta, tb := &laterTB{TB: t}, &laterTB{TB: t}
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() { ta.run(); close(done) }()
		tb.run()
		<-done
	})
	old := startMux(ta, `pool_mode = "transaction"`)
	next := startMux(tb, `pool_mode = "transaction"`)
	cfg, err := config.Parse([]byte(muxConfig(`pool_mode = "transaction"`)))
	if err != nil {
		t.Fatal(err)
	}
	delete(cfg.Databases, "bench")
	delete(cfg.Databases, config.WildcardDatabase)
	next.reload(t, cfg)

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	connect := func(dsn string) *pgconn.PgConn {
		c, err := pgconn.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		return c
	}
	idle := connect(old.dsn("muxuser", "muxpass", "muxtest"))
	if _, err := idle.Exec(ctx, "SET TimeZone = 'Asia/Kathmandu'").ReadAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := idle.Exec(ctx, "SET search_path = pg_catalog, public").ReadAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := idle.Exec(ctx, "SET app.tenant = 'acme'").ReadAll(); err != nil {
		t.Fatal(err)
	}
	if _, err := idle.Prepare(ctx, "plus", "SELECT $1::int + 40", nil); err != nil {
		t.Fatal(err)
	}
	gone := connect(old.dsn("benchuser", "benchpass", "bench"))
	if _, err := gone.Exec(ctx, "SELECT 1").ReadAll(); err != nil {
		t.Fatal(err)
	}
	mid := connect(old.dsn("muxuser", "muxpass", "muxtest"))
	if _, err := mid.Exec(ctx, "BEGIN; SELECT 1").ReadAll(); err != nil {
		t.Fatal(err)
	}

	sent, took := handOver(t, old, next, 0)
	if sent != 2 || took != 2 {
		t.Fatalf("sent %d, took %d clients: want the 2 idle ones", sent, took)
	}
	if n := old.p.loggedIn(); n != 1 {
		t.Fatalf("the old mux keeps %d clients, want 1 (mid-transaction)", n)
	}
	if n := next.p.loggedIn(); n != 1 {
		t.Fatalf("the new mux has %d clients, want 1 (the other's database is gone)", n)
	}

	res, err := idle.Exec(ctx, "SHOW TimeZone").ReadAll()
	if err != nil {
		t.Fatalf("the moved client: %v", err)
	}
	if got := string(res[0].Rows[0][0]); got != "Asia/Kathmandu" {
		t.Fatalf("TimeZone after the hand-over: %q", got)
	}
	res, err = idle.Exec(ctx, "SELECT current_setting('search_path'), current_setting('app.tenant')").ReadAll()
	if err != nil || string(res[0].Rows[0][0]) != "pg_catalog, public" || string(res[0].Rows[0][1]) != "acme" {
		t.Fatalf("settings after the hand-over: %v %q", err, res[0].Rows)
	}
	r := idle.ExecPrepared(ctx, "plus", [][]byte{[]byte("2")}, nil, nil).Read()
	if r.Err != nil || string(r.Rows[0][0]) != "42" {
		t.Fatalf("the prepared statement after the hand-over: %v %q", r.Err, r.Rows)
	}

	_, err = gone.Exec(ctx, "SELECT 1").ReadAll()
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != wire.CodeAdminShutdown || !strings.Contains(pe.Message, `database "bench" is not in the new mux`) {
		t.Fatalf("a client of a database the new mux lacks: %v", err)
	}

	// The client that stayed: its cancel, sent to the new mux, is
	// forwarded to the old one.
	sleeping := make(chan error, 1)
	go func() {
		_, err := mid.Exec(ctx, "SELECT pg_sleep(30)").ReadAll()
		sleeping <- err
	}()
	time.Sleep(300 * time.Millisecond)
	cancelVia(t, next, mid.PID(), mid.SecretKey())
	select {
	case err := <-sleeping:
		if !errors.As(err, &pe) || pe.Code != "57014" {
			t.Fatalf("the cancelled query ended with %v, want 57014", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the cancel sent to the new mux did not reach the old one")
	}
	if _, err := mid.Exec(ctx, "ROLLBACK").ReadAll(); err != nil {
		t.Fatal(err)
	}
	// The moved client's own cancel key works in the new mux.
	go func() {
		_, err := idle.Exec(ctx, "SELECT pg_sleep(30)").ReadAll()
		sleeping <- err
	}()
	time.Sleep(300 * time.Millisecond)
	cancelVia(t, next, idle.PID(), idle.SecretKey())
	select {
	case err := <-sleeping:
		if !errors.As(err, &pe) || pe.Code != "57014" {
			t.Fatalf("the moved client's cancelled query ended with %v, want 57014", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the moved client's cancel key does not work in the new mux")
	}
}

// settle waits until m's clients that are between transactions have
// let go of their servers (a SET's state check, a release after the
// reply, finish just after the client has its answer) and, with the
// goroutine driver, are parked.
func settle(t *testing.T, m *testMux) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		busy := false
		for _, c := range m.p.loggedInClients(nil) {
			c.mu.Lock()
			idle := c.server == nil && !c.pin.checking
			busy = busy || c.server != nil && c.core.Status() == 'I' || c.pin.checking ||
				idle && !c.loopDriven() && c.park.state.Load() != parked
			c.mu.Unlock()
		}
		if !busy {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// cancelVia sends a CancelRequest for (pid, secret) to m and waits for m
// to close the connection.
func cancelVia(t *testing.T, m *testMux, pid uint32, secret []byte) {
	t.Helper()
	conn, err := net.Dial("tcp", net.JoinHostPort(m.host, itoa(m.port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := make([]byte, 12, 12+len(secret))
	binary.BigEndian.PutUint32(msg[4:8], wire.CancelRequestCode)
	binary.BigEndian.PutUint32(msg[8:12], pid)
	msg = append(msg, secret...)
	binary.BigEndian.PutUint32(msg[0:4], uint32(len(msg)))
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	_, _ = conn.Read(b[:])
}

// The successor's limit (its open-file room) bounds the clients that
// move; the rest stay and work where they are.
func TestHandOverStopsAtTheSuccessorsLimit(t *testing.T) {
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
	var conns []*pgconn.PgConn
	for range 3 {
		c, err := pgconn.Connect(ctx, old.dsn("muxuser", "muxpass", "muxtest"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		conns = append(conns, c)
	}
	sent, took := handOver(t, old, next, 2)
	if sent != 2 || took != 2 {
		t.Fatalf("sent %d, took %d: want the limit, 2", sent, took)
	}
	if o, n := old.p.loggedIn(), next.p.loggedIn(); o != 1 || n != 2 {
		t.Fatalf("clients: old %d, new %d; want 1 and 2", o, n)
	}
	for i, c := range conns {
		if _, err := c.Exec(ctx, "SELECT 1").ReadAll(); err != nil {
			t.Fatalf("client %d: %v", i, err)
		}
	}
}

// A client on the Unix socket moves as a TCP one does.
func TestHandOverUnixSocketClient(t *testing.T) {
	ta, tb := &laterTB{TB: t}, &laterTB{TB: t}
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() { ta.run(); close(done) }()
		tb.run()
		<-done
	})
	dir := t.TempDir()
	old := startMux(ta, "pool_mode = \"transaction\"\nlisten = []\nunix_socket_dir = \""+dir+"\"")
	next := startMux(tb, `pool_mode = "transaction"`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := pgconn.Connect(ctx, "host="+dir+" port=6432 user=muxuser password=muxpass dbname=muxtest")
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(context.Background())
	if _, err := c.Exec(ctx, "SET TimeZone = 'Pacific/Chatham'").ReadAll(); err != nil {
		t.Fatal(err)
	}
	if sent, took := handOver(t, old, next, 0); sent != 1 || took != 1 {
		t.Fatalf("sent %d, took %d: want the Unix socket client", sent, took)
	}
	if n := next.p.loggedIn(); n != 1 {
		t.Fatalf("the new mux has %d clients, want 1", n)
	}
	res, err := c.Exec(ctx, "SHOW TimeZone").ReadAll()
	if err != nil || string(res[0].Rows[0][0]) != "Pacific/Chatham" {
		t.Fatalf("after the hand-over: %v %v", err, res)
	}
}

// A successor that fails while clients are on their way: they stay, and
// work, with the old mux.
func TestHandOverToAFailedSuccessorKeepsTheClients(t *testing.T) {
	old := startMux(t, `pool_mode = "transaction"`)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var conns []*pgconn.PgConn
	for range 2 {
		c, err := pgconn.Connect(ctx, old.dsn("muxuser", "muxpass", "muxtest"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close(context.Background()) })
		if _, err := c.Exec(ctx, "SET TimeZone = 'Europe/Lisbon'").ReadAll(); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if sent, _ := handOver(t, old, nil, 0); sent != 0 {
		t.Fatalf("%d clients counted as sent to a successor that failed", sent)
	}
	if n := old.p.loggedIn(); n != 2 {
		t.Fatalf("the old mux has %d clients, want both back", n)
	}
	for i, c := range conns {
		res, err := c.Exec(ctx, "SHOW TimeZone").ReadAll()
		if err != nil || string(res[0].Rows[0][0]) != "Europe/Lisbon" {
			t.Fatalf("client %d after the failed hand-over: %v %v", i, err, res)
		}
	}
}
