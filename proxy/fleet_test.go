package proxy

import (
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/balancer"
	"github.com/muxpg/mux/internal/cancelkey"
	"github.com/muxpg/mux/internal/wire"
)

// startFleet starts two peered muxes, instances 1 (a) and 2 (b), and a
// balancer in front of them that gives new connections to a, b, a, …
func startFleet(t *testing.T) (a, b *testMux, bal *balancer.Balancer) {
	t.Helper()
	// Each mux checks for leaked goroutines when it stops, which fails
	// while the other still runs: stop both at once.
	ta, tb := &laterTB{TB: t}, &laterTB{TB: t}
	t.Cleanup(func() {
		done := make(chan struct{})
		go func() { ta.run(); close(done) }()
		tb.run()
		<-done
	})
	a = startMux(ta, "peer_id = 1\ndefault_pool_size = 3")
	b = startMux(tb, fmt.Sprintf("peer_id = 2\ndefault_pool_size = 3\n[peers.1]\nhost = %q\nport = %d\n", a.host, a.port))
	// a learns b's port only now: a reload adds the peer.
	cfg, err := config.Parse([]byte(muxConfig(fmt.Sprintf("peer_id = 1\ndefault_pool_size = 3\n[peers.2]\nhost = %q\nport = %d\n", b.host, b.port))))
	if err != nil {
		t.Fatal(err)
	}
	a.reload(t, cfg)
	bal, err = balancer.New(net.JoinHostPort(a.host, itoa(a.port)), net.JoinHostPort(b.host, itoa(b.port)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bal.Close() })
	return a, b, bal
}

// laterTB keeps the cleanups registered with it for run.
type laterTB struct {
	testing.TB
	fns []func()
}

func (l *laterTB) Cleanup(f func()) { l.fns = append(l.fns, f) }

func (l *laterTB) run() {
	for i := len(l.fns) - 1; i >= 0; i-- {
		l.fns[i]()
	}
}

// connectVia opens a pgx connection through the balancer whose context
// cancellation sends a CancelRequest (pgx's default closes the socket).
func connectVia(t *testing.T, bal *balancer.Balancer) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=muxuser password=muxpass dbname=muxtest sslmode=disable", bal.Addr().Port))
	if err != nil {
		t.Fatal(err)
	}
	cfg.BuildContextWatcherHandler = func(pc *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pc, DeadlineDelay: 10 * time.Second}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// sleepAsync runs pg_sleep(30) on conn under ctx and returns its error.
func sleepAsync(ctx context.Context, conn *pgx.Conn) <-chan error {
	errc := make(chan error, 1)
	go func() {
		_, err := conn.Exec(ctx, "SELECT pg_sleep(30)")
		errc <- err
	}()
	time.Sleep(300 * time.Millisecond) // let the query reach the server
	return errc
}

func wantCancelled(t *testing.T, errc <-chan error, within time.Duration) {
	t.Helper()
	select {
	case err := <-errc:
		if got := sqlstate(err); got != "57014" {
			t.Fatalf("query returned %v (SQLSTATE %q), want 57014", err, got)
		}
	case <-time.After(within):
		t.Fatal("query was not cancelled")
	}
}

// A cancel that the balancer gives to instance b, for a query running
// through instance a, is forwarded by b to a and cancels the query; so
// does pgx's own cancel on context cancellation.
func TestFleetCancelThroughBalancer(t *testing.T) {
	_, _, bal := startFleet(t)
	victim := connectVia(t, bal) // the balancer's first pick: a

	errc := sleepAsync(context.Background(), victim)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := victim.PgConn().CancelRequest(ctx); err != nil { // the second pick: b
		t.Fatal(err)
	}
	wantCancelled(t, errc, 3*time.Second)
	if got := bal.Counts(); got[0] != 1 || got[1] != 1 {
		t.Fatalf("balancer gave a and b %v connections, want [1 1]", got)
	}

	// pgx's context cancellation, with only b taking new connections.
	bal.SetEnabled(0, false)
	qctx, qcancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer qcancel()
	start := time.Now()
	wantCancelled(t, sleepAsync(qctx, victim), 5*time.Second)
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("context cancellation took %v: the cancel did not reach the query", d)
	}
	if got := bal.Counts(); got[1] != 2 {
		t.Fatalf("balancer gave b %d connections, want 2", got[1])
	}
	if got := queryString(t, victim, "SELECT 'alive'::text"); got != "alive" {
		t.Fatal(got)
	}
}

// sendCancel sends a raw CancelRequest for (pid, secret) to m and checks
// that m closes the connection without a word.
func sendCancel(t *testing.T, m *testMux, pid uint32, secret []byte) {
	t.Helper()
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(m.host, itoa(m.port)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	msg := make([]byte, 12, 12+len(secret))
	binary.BigEndian.PutUint32(msg[4:8], wire.CancelRequestCode)
	binary.BigEndian.PutUint32(msg[8:12], pid)
	msg = append(msg, secret...)
	binary.BigEndian.PutUint32(msg[0:4], uint32(len(msg)))
	if _, err := conn.Write(msg); err != nil {
		t.Fatal(err)
	}
	if n, err := conn.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("after a CancelRequest: read %d bytes, %v; want EOF", n, err)
	}
}

// A key whose hop count is spent is not forwarded; one with a hop left
// is; a key naming an instance no peer entry names is dropped.
func TestFleetCancelHopCountAndUnknownInstance(t *testing.T) {
	a, b, _ := startFleet(t)
	victim := a.connect(t)
	pc := victim.PgConn()
	if owner := cancelkey.Instance(1).Owner(cancelkey.Key{PID: pc.PID()}); owner != 1 {
		t.Fatalf("a's key names instance %d, want 1", owner)
	}
	key := cancelkey.Key{PID: pc.PID(), Secret: pc.SecretKey()}
	if key.TTL() != cancelkey.MaxTTL {
		t.Fatalf("issued hop count %d, want %d", key.TTL(), cancelkey.MaxTTL)
	}
	errc := sleepAsync(context.Background(), victim)

	spent := key
	for range cancelkey.MaxTTL {
		spent, _ = spent.Forwarded()
	}
	sendCancel(t, b, spent.PID, spent.Secret)
	// Another instance's id (3): no peer has it.
	other := cancelkey.Instance(3).Issue(0)
	sendCancel(t, b, other.PID, other.Secret)
	select {
	case err := <-errc:
		t.Fatalf("query ended (%v) after a spent or unknown key", err)
	case <-time.After(500 * time.Millisecond):
	}

	last, _ := key.Forwarded()
	last, _ = last.Forwarded() // one hop left: b may forward it
	sendCancel(t, b, last.PID, last.Secret)
	wantCancelled(t, errc, 3*time.Second)
}
