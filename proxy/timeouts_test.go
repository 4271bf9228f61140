package proxy

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/muxpg/mux/internal/wire"
)

func TestClientIdleTimeout(t *testing.T) {
	m := startMux(t, `client_idle_timeout = "300ms"`)
	conn := m.connect(t)
	if got := queryString(t, conn, "SELECT 'ok'::text"); got != "ok" {
		t.Fatal(got)
	}
	time.Sleep(700 * time.Millisecond)
	_, err := conn.Exec(context.Background(), "SELECT 1")
	if got := sqlstate(err); got != "57P05" {
		t.Fatalf("after idling: %v (SQLSTATE %q), want 57P05", err, got)
	}
}

// client_idle_timeout is for any client idle between transactions, also
// one that keeps its server: session mode, or pinned in transaction mode.
func TestClientIdleTimeoutKeepingAServer(t *testing.T) {
	for name, conf := range map[string]string{
		"session mode": `pool_mode = "session"`,
		"pinned":       `pool_mode = "transaction"`,
	} {
		t.Run(name, func(t *testing.T) {
			m := startMux(t, conf+"\nclient_idle_timeout = \"300ms\"")
			conn := m.connect(t)
			// A temporary table pins a transaction-mode client.
			if _, err := conn.Exec(context.Background(), "CREATE TEMP TABLE idle_pin (x int)"); err != nil {
				t.Fatal(err)
			}
			time.Sleep(700 * time.Millisecond)
			_, err := conn.Exec(context.Background(), "SELECT 1")
			if got := sqlstate(err); got != "57P05" {
				t.Fatalf("after idling: %v (SQLSTATE %q), want 57P05", err, got)
			}
		})
	}
}

func TestIdleTransactionTimeout(t *testing.T) {
	m := startMux(t, "idle_transaction_timeout = \"300ms\"\ndefault_pool_size = 1")
	ctx := context.Background()
	conn := m.connect(t)
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(700 * time.Millisecond)
	_, err := conn.Exec(ctx, "SELECT 1")
	if got := sqlstate(err); got != "25P03" {
		t.Fatalf("idle in transaction: %v (SQLSTATE %q), want 25P03", err, got)
	}
	// The server was rolled back and serves the next client.
	other := m.connect(t)
	var inTx bool
	if err := other.QueryRow(ctx, "SELECT pg_current_xact_id_if_assigned() IS NOT NULL").Scan(&inTx); err != nil || inTx {
		t.Fatalf("next client: %v, in transaction %v", err, inTx)
	}
}

// idle_transaction_timeout counts only time the client sends nothing, not
// a long query inside the transaction.
func TestIdleTransactionTimeoutSparesLongQuery(t *testing.T) {
	m := startMux(t, "idle_transaction_timeout = \"300ms\"")
	ctx := context.Background()
	conn := m.connect(t)
	if _, err := conn.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SELECT pg_sleep(0.8)"); err != nil {
		t.Fatalf("query longer than idle_transaction_timeout: %v", err)
	}
	if _, err := conn.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
}

func TestQueryTimeoutCancelsAndKeepsServer(t *testing.T) {
	m := startMux(t, "query_timeout = \"300ms\"\ndefault_pool_size = 1\npool_mode = \"session\"")
	conn := m.connect(t)
	pid := queryString(t, conn, "SELECT pg_backend_pid()::text")
	start := time.Now()
	_, err := conn.Exec(context.Background(), "SELECT pg_sleep(10)")
	if got := sqlstate(err); got != "57014" {
		t.Fatalf("long query: %v (SQLSTATE %q), want 57014", err, got)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("cancelled after %v", d)
	}
	if got := queryString(t, conn, "SELECT pg_backend_pid()::text"); got != pid {
		t.Fatalf("server changed after query_timeout: %s -> %s", pid, got)
	}
	// Short queries are untouched.
	for i := 0; i < 5; i++ {
		if _, err := conn.Exec(context.Background(), "SELECT pg_sleep(0.01)"); err != nil {
			t.Fatal(err)
		}
	}
}

func TestQueryWaitTimeout(t *testing.T) {
	m := startMux(t, "query_wait_timeout = \"1s\"\ndefault_pool_size = 1")
	ctx := context.Background()
	holder := m.connect(t)
	if _, err := holder.Exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	waiter := m.connect(t)
	_, err := waiter.Exec(ctx, "SELECT 1")
	if got := sqlstate(err); got != "08P01" || !strings.Contains(err.Error(), "query_wait_timeout") {
		t.Fatalf("waiting client: %v (SQLSTATE %q), want 08P01 naming query_wait_timeout", err, got)
	}
	if _, err := holder.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
}

func TestClientLoginTimeout(t *testing.T) {
	m := startMux(t, `client_login_timeout = "300ms"`)
	conn, err := net.Dial("tcp", net.JoinHostPort(m.host, itoa(m.port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// Start a login and stall in the middle of the password exchange.
	if _, err := conn.Write(wire.StartupPacket(3<<16, "user", "muxuser", "database", "muxtest")); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
	fe := pgproto3.NewFrontend(conn, conn)
	for {
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("no error before the connection closed: %v", err)
		}
		if er, ok := msg.(*pgproto3.ErrorResponse); ok {
			if er.Code != "08P01" || !strings.Contains(er.Message, "client_login_timeout") {
				t.Fatalf("got %s %q, want 08P01 naming client_login_timeout", er.Code, er.Message)
			}
			return
		}
	}
}

func TestServerLifetimeReplacesServer(t *testing.T) {
	m := startMux(t, "server_lifetime = \"500ms\"\ndefault_pool_size = 1")
	conn := m.connect(t)
	pid := queryString(t, conn, "SELECT pg_backend_pid()::text")
	time.Sleep(1200 * time.Millisecond)
	if got := queryString(t, conn, "SELECT pg_backend_pid()::text"); got == pid {
		t.Fatal("server outlived server_lifetime")
	}
}

func TestServerConnectTimeout(t *testing.T) {
	// A "server" that accepts and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close()
		}
	}()
	port := ln.Addr().(*net.TCPAddr).Port
	m := startMux(t, "server_connect_timeout = \"300ms\"\nquery_wait_timeout = \"1s\"")
	m.cfg.Databases["silent"] = m.cfg.Databases["muxtest"]
	db := m.cfg.Databases["silent"]
	db.Port = port
	m.cfg.Databases["silent"] = db
	start := time.Now()
	got := connectErr(t, m.dsn("muxuser", "muxpass", "silent"))
	if got != "08006" && got != "08P01" {
		t.Fatalf("SQLSTATE %q, want a connection error", got)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("took %v", d)
	}
}

// A client that stops reading cannot hold its server: client_write_timeout
// closes both.
func TestClientWriteTimeout(t *testing.T) {
	m := startMux(t, "client_write_timeout = \"500ms\"\ndefault_pool_size = 1")
	raw := dialRaw(t, m, "muxuser", "muxpass", "muxtest")
	if tc, ok := raw.conn.(*net.TCPConn); ok {
		_ = tc.SetReadBuffer(4096)
	}
	raw.fe.Send(&pgproto3.Query{String: "SELECT repeat('x', 1000) FROM generate_series(1, 2000000)"})
	if err := raw.fe.Flush(); err != nil {
		t.Fatal(err)
	}
	// Never read. Another client gets the (only) server once mux gives up.
	other := m.connect(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	var one int
	if err := other.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
		t.Fatalf("the stalled client kept the server: %v", err)
	}
}
