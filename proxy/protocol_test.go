package proxy

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/muxpg/mux/internal/wire"
)

func TestLargeMessagesBothWays(t *testing.T) {
	m := startMux(t, "default_pool_size = 2")
	conn := m.connect(t)
	ctx := context.Background()
	blob := make([]byte, 5<<20)
	_, _ = rand.Read(blob)
	var back []byte
	// Bind carries 5 MiB to the server; the DataRow brings it back.
	if err := conn.QueryRow(ctx, "SELECT $1::bytea", blob).Scan(&back); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(blob, back) {
		t.Fatal("bytea came back different")
	}
	// A simple Query longer than the read buffer, which transaction mode
	// reads whole to inspect it.
	long := "SELECT '" + strings.Repeat("x", 100000) + "'::text"
	res, err := conn.PgConn().Exec(ctx, long).ReadAll()
	if err != nil || len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0][0]) != 100000 {
		t.Fatalf("long simple query: %v", err)
	}
}

func TestEmptyQuery(t *testing.T) {
	m := startMux(t, "")
	conn := m.connect(t)
	res, err := conn.PgConn().Exec(context.Background(), "").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Err != nil || len(res[0].Rows) != 0 {
		t.Fatalf("empty query: %+v", res)
	}
	if got := queryString(t, conn, "SELECT 'after'::text"); got != "after" {
		t.Fatal(got)
	}
}

// Pipelined extended protocol with several Syncs in flight, while another
// client shares the single server.
func TestPipelineSharesServerSafely(t *testing.T) {
	m := startMux(t, "default_pool_size = 1")
	a := m.connect(t)
	b := m.connect(t)
	ctx := context.Background()
	for round := 0; round < 20; round++ {
		p := a.PgConn().StartPipeline(ctx)
		for i := 0; i < 5; i++ {
			p.SendQueryParams("SELECT $1::int + 1", [][]byte{[]byte(itoa(i))}, nil, nil, nil)
			p.SendPipelineSync()
		}
		if err := p.Flush(); err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 5; i++ {
			res, err := p.GetResults()
			if err != nil {
				t.Fatal(err)
			}
			rr, ok := res.(*pgconn.ResultReader)
			if !ok {
				t.Fatalf("result %d: %T", i, res)
			}
			r := rr.Read()
			if r.Err != nil || string(r.Rows[0][0]) != itoa(i+1) {
				t.Fatalf("pipeline result %d: %v %q", i, r.Err, r.Rows)
			}
			sync, err := p.GetResults()
			if err != nil {
				t.Fatal(err)
			}
			if _, ok := sync.(*pgconn.PipelineSync); !ok {
				t.Fatalf("want sync, got %T", sync)
			}
		}
		if err := p.Close(); err != nil {
			t.Fatal(err)
		}
		if got := queryString(t, b, "SELECT 'b'::text"); got != "b" {
			t.Fatal(got)
		}
	}
}

// Parse/Bind/Execute followed by Flush, no Sync: the server stays with the
// client (an implicit transaction is open) until the Sync.
func TestFlushWithoutSyncKeepsServer(t *testing.T) {
	m := startMux(t, "default_pool_size = 1")
	raw := dialRaw(t, m, "muxuser", "muxpass", "muxtest")
	other := m.connect(t)
	raw.fe.Send(&pgproto3.Parse{Query: "SELECT pg_backend_pid()"})
	raw.fe.Send(&pgproto3.Bind{})
	raw.fe.Send(&pgproto3.Execute{})
	raw.fe.Send(&pgproto3.Flush{})
	if err := raw.fe.Flush(); err != nil {
		t.Fatal(err)
	}
	raw.expect(t, "ParseComplete", "BindComplete", "DataRow", "CommandComplete")
	// The other client must wait: the only server is mid-pipeline.
	done := make(chan error, 1)
	go func() {
		_, err := other.Exec(context.Background(), "SELECT 1")
		done <- err
	}()
	select {
	case err := <-done:
		t.Fatalf("other client ran while the server was inside an unsynced pipeline (err %v)", err)
	case <-time.After(300 * time.Millisecond):
	}
	raw.fe.Send(&pgproto3.Sync{})
	if err := raw.fe.Flush(); err != nil {
		t.Fatal(err)
	}
	raw.expect(t, "ReadyForQuery")
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

// A client that vanishes mid-transaction leaves nothing behind: the next
// client on the same single server sees no open transaction and no rows.
func TestClientVanishesMidTransaction(t *testing.T) {
	m := startMux(t, "default_pool_size = 1")
	ctx := context.Background()
	setup := m.connect(t)
	if _, err := setup.Exec(ctx, "CREATE TABLE IF NOT EXISTS vanish (v int); TRUNCATE vanish"); err != nil {
		t.Fatal(err)
	}
	for _, mid := range []string{"idle in transaction", "mid-query"} {
		raw := dialRaw(t, m, "muxuser", "muxpass", "muxtest")
		raw.fe.Send(&pgproto3.Query{String: "BEGIN; INSERT INTO vanish VALUES (1)"})
		_ = raw.fe.Flush()
		raw.expect(t, "CommandComplete", "CommandComplete", "ReadyForQuery")
		if mid == "mid-query" {
			raw.fe.Send(&pgproto3.Query{String: "SELECT pg_sleep(0.5)"})
			_ = raw.fe.Flush()
			time.Sleep(100 * time.Millisecond)
		}
		raw.conn.Close()
		var inTx bool
		var n int
		if err := setup.QueryRow(ctx, "SELECT pg_current_xact_id_if_assigned() IS NOT NULL, (SELECT count(*) FROM vanish)").Scan(&inTx, &n); err != nil {
			t.Fatalf("%s: %v", mid, err)
		}
		if inTx || n != 0 {
			t.Fatalf("%s: next client inherited a transaction (in tx %v, rows %d)", mid, inTx, n)
		}
	}
}

func TestListenRefusedInTransactionMode(t *testing.T) {
	m := startMux(t, "listen_fanout = false")
	conn := m.connect(t)
	ctx := context.Background()
	_, err := conn.Exec(ctx, "LISTEN chan")
	if got := sqlstate(err); got != "0A000" {
		t.Fatalf("LISTEN: %v (SQLSTATE %q), want 0A000", err, got)
	}
	_, err = conn.Exec(ctx, "select 1; /* x */ listen \"Chan\"")
	if got := sqlstate(err); got != "0A000" {
		t.Fatalf("multi-statement LISTEN: %v (SQLSTATE %q), want 0A000", err, got)
	}
	// Inside a transaction, the refusal aborts it as a failing statement.
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "LISTEN chan"); sqlstate(err) != "0A000" {
		t.Fatalf("LISTEN in transaction: %v", err)
	}
	_ = tx.Rollback(ctx)
	// Words that merely contain "listen" pass.
	if got := queryString(t, conn, "SELECT 'listen'::text"); got != "listen" {
		t.Fatal(got)
	}
}

func TestListenNotifyInSessionMode(t *testing.T) {
	m := startMux(t, `pool_mode = "session"`)
	ctx := context.Background()
	l := m.connect(t)
	if _, err := l.Exec(ctx, "LISTEN jobs"); err != nil {
		t.Fatal(err)
	}
	n := m.connect(t)
	if _, err := n.Exec(ctx, "NOTIFY jobs, 'hello'"); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	note, err := l.WaitForNotification(wctx)
	if err != nil {
		t.Fatal(err)
	}
	if note.Channel != "jobs" || note.Payload != "hello" {
		t.Fatalf("notification %+v", note)
	}
}

// In session mode a leaving client's settings are reset before the server
// serves the next client.
func TestSessionModeResetsServer(t *testing.T) {
	m := startMux(t, "pool_mode = \"session\"\ndefault_pool_size = 1")
	ctx := context.Background()
	a := m.connect(t)
	if _, err := a.Exec(ctx, "SET work_mem = '77MB'"); err != nil {
		t.Fatal(err)
	}
	pid := queryString(t, a, "SELECT pg_backend_pid()::text")
	a.Close(ctx)
	b := m.connect(t)
	if got := queryString(t, b, "SELECT pg_backend_pid()::text"); got != pid {
		t.Fatalf("expected the single server again, got pid %s want %s", got, pid)
	}
	if got := queryString(t, b, "SELECT current_setting('work_mem')"); got == "77MB" {
		t.Fatal("work_mem leaked to the next session")
	}
}

func TestStartupParameters(t *testing.T) {
	m := startMux(t, `ignore_startup_parameters = ["geqo_seed"]`)
	conn := m.connect(t, "options='-c statement_timeout=1234 --work-mem=5MB'", "extra_float_digits=2")
	for q, want := range map[string]string{
		"SELECT current_setting('statement_timeout')":  "1234ms",
		"SELECT current_setting('work_mem')":           "5MB",
		"SELECT current_setting('extra_float_digits')": "2",
	} {
		if got := queryString(t, conn, q); got != want {
			t.Errorf("%s = %q, want %q", q, got, want)
		}
	}
	if got := connectErr(t, m.dsn("muxuser", "muxpass", "muxtest", "options='-c shared_buffers=1GB'")); got != "55P02" {
		t.Errorf("backend-start setting: SQLSTATE %q, want 55P02", got)
	}
	if got := connectErr(t, m.dsn("muxuser", "muxpass", "muxtest", "options='-c no_such_setting=1'")); got != "42704" {
		t.Errorf("unknown setting: SQLSTATE %q, want 42704", got)
	}
	// Ignored parameters are dropped silently.
	c2 := m.connect(t, "geqo_seed=0.5")
	if got := queryString(t, c2, "SELECT current_setting('geqo_seed')"); got != "0" {
		t.Errorf("ignored parameter was applied: geqo_seed=%s", got)
	}
	// An invalid value is refused with Postgres's own error at first use.
	c3, err := pgx.Connect(context.Background(), m.dsn("muxuser", "muxpass", "muxtest", "options='-c statement_timeout=banana'"))
	if err == nil {
		_, err = c3.Exec(context.Background(), "SELECT 1")
		c3.Close(context.Background())
	}
	if got := sqlstate(err); got != "22023" {
		t.Errorf("invalid value: %v (SQLSTATE %q), want 22023", err, got)
	}
}

func TestNegotiateProtocolVersion(t *testing.T) {
	m := startMux(t, "")
	conn, err := net.Dial("tcp", net.JoinHostPort(m.host, itoa(m.port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(wire.StartupPacket(3<<16|2, "user", "muxuser", "database", "muxtest", "_pq_.future_feature", "on")); err != nil {
		t.Fatal(err)
	}
	fe := pgproto3.NewFrontend(conn, conn)
	msg, err := fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	nv, ok := msg.(*pgproto3.NegotiateProtocolVersion)
	if !ok {
		t.Fatalf("got %T, want NegotiateProtocolVersion", msg)
	}
	if nv.NewestMinorProtocol != 3<<16|2 || len(nv.UnrecognizedOptions) != 1 || nv.UnrecognizedOptions[0] != "_pq_.future_feature" {
		t.Fatalf("NegotiateProtocolVersion %+v", nv)
	}
	msg, err = fe.Receive()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := msg.(*pgproto3.AuthenticationSASL); !ok {
		t.Fatalf("got %T, want the authentication request", msg)
	}
}

func TestUnixSocket(t *testing.T) {
	dir := t.TempDir()
	m := startMux(t, "listen = []\nunix_socket_dir = \""+dir+"\"")
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, "host="+dir+" port=6432 user=muxuser password=muxpass dbname=muxtest default_query_exec_mode=exec")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if got := queryString(t, conn, "SELECT 'unix'::text"); got != "unix" {
		t.Fatal(got)
	}
	_ = m
}

// rawClient is a logged-in client driven message by message.
type rawClient struct {
	conn net.Conn
	fe   *pgproto3.Frontend
}

// dialRaw logs in through mux with pgconn and takes over the connection.
func dialRaw(t *testing.T, m *testMux, user, password, db string) *rawClient {
	t.Helper()
	return dialRawWith(t, m, user, password, db, nil)
}

// dialRawWith is dialRaw with the client's socket made by d (nil: the
// default dialer).
func dialRawWith(t *testing.T, m *testMux, user, password, db string, d *net.Dialer) *rawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cfg, err := pgconn.ParseConfig(m.dsn(user, password, db))
	if err != nil {
		t.Fatal(err)
	}
	if d != nil {
		cfg.DialFunc = d.DialContext
	}
	pc, err := pgconn.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	hc, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hc.Conn.Close() })
	return &rawClient{conn: hc.Conn, fe: hc.Frontend}
}

// expect reads messages and checks their types, by pgproto3 type name.
func (r *rawClient) expect(t *testing.T, names ...string) {
	t.Helper()
	_ = r.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, want := range names {
		msg, err := r.fe.Receive()
		if err != nil {
			t.Fatalf("waiting for %s: %v", want, err)
		}
		got := fmt.Sprintf("%T", msg)
		got = got[strings.LastIndex(got, ".")+1:]
		if got != want {
			t.Fatalf("got %s (%+v), want %s", got, msg, want)
		}
	}
}

func asErrorResponse(msg pgproto3.BackendMessage) (*pgproto3.ErrorResponse, bool) {
	er, ok := msg.(*pgproto3.ErrorResponse)
	return er, ok
}
