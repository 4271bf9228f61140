package proxy

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/muxpg/mux/internal/wire"
)

// rawError sends raw bytes to mux as a new client and returns the SQLSTATE
// of the ErrorResponse it answers with, checking that mux then closes.
func rawError(t *testing.T, m *testMux, payload []byte) string {
	t.Helper()
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(m.host, itoa(m.port)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(payload); err != nil {
		t.Fatal(err)
	}
	fe := pgproto3.NewFrontend(conn, conn)
	code := ""
	for {
		msg, err := fe.Receive()
		if err != nil {
			if code == "" {
				t.Fatalf("no error response before %v", err)
			}
			return code
		}
		switch msg := msg.(type) {
		case *pgproto3.ErrorResponse:
			code = msg.Code
			if msg.Severity != "FATAL" {
				t.Errorf("severity %q, want FATAL", msg.Severity)
			}
		default:
			t.Fatalf("unexpected %T", msg)
		}
	}
}

func itoa(n int) string {
	var b [20]byte
	i := len(b)
	for {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
		if n == 0 {
			return string(b[i:])
		}
	}
}

// background keeps a well-behaved client busy and reports any failure.
func background(t *testing.T, m *testMux) (stop func()) {
	t.Helper()
	conn := m.connect(t)
	var wg sync.WaitGroup
	var done atomic.Bool
	var n atomic.Int64
	wg.Add(1)
	go func() {
		defer wg.Done()
		for !done.Load() {
			var v int
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := conn.QueryRow(ctx, "SELECT 42").Scan(&v)
			cancel()
			if err != nil || v != 42 {
				t.Errorf("well-behaved client failed: %v", err)
				return
			}
			n.Add(1)
		}
	}()
	return func() {
		done.Store(true)
		wg.Wait()
		if n.Load() == 0 {
			t.Error("well-behaved client ran no query")
		}
	}
}

func connectErr(t *testing.T, dsn string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		conn.Close(ctx)
		t.Fatalf("connect %q succeeded, want an error", dsn)
	}
	return sqlstate(err)
}

func TestLoginErrors(t *testing.T) {
	m := startMux(t, "max_client_conn = 20")
	stop := background(t, m)
	defer stop()

	cases := []struct {
		name string
		dsn  string
		want string
	}{
		{"wrong password", m.dsn("muxuser", "nope", "muxtest"), "28P01"},
		{"unknown user", m.dsn("nosuchuser", "x", "muxtest"), "28P01"},
		{"unknown database", m.dsn("muxuser", "muxpass", "nosuchdb"), "3D000"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := connectErr(t, tc.dsn); got != tc.want {
				t.Fatalf("SQLSTATE %q, want %q", got, tc.want)
			}
		})
	}

	raw := []struct {
		name    string
		payload []byte
		want    string
	}{
		{"unsupported protocol", wire.StartupPacket(4<<16, "user", "muxuser", "database", "muxtest"), "0A000"},
		{"protocol 2", wire.StartupPacket(2<<16, "user", "muxuser"), "0A000"},
		{"garbage first packet", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "08P01"},
		{"short length", []byte{0, 0, 0, 3, 0, 0, 0, 0}, "08P01"},
		{"startup over 10000 bytes", append([]byte{0, 0, 0x27, 0x11}, make([]byte, 10004)...), "08P01"},
		{"no user", wire.StartupPacket(3<<16, "database", "muxtest"), "28000"},
		{"replication value", wire.StartupPacket(3<<16, "user", "muxuser", "replication", "maybe"), "22023"},
		{"bytes after SSLRequest", append(wire.StartupPacket(80877103)[:8:8], wire.StartupPacket(3<<16, "user", "muxuser")...), "08P01"},
	}
	for _, tc := range raw {
		t.Run(tc.name, func(t *testing.T) {
			if got := rawError(t, m, tc.payload); got != tc.want {
				t.Fatalf("SQLSTATE %q, want %q", got, tc.want)
			}
		})
	}
}

func TestUnknownDatabaseWithoutWildcard(t *testing.T) {
	m := startMux(t, "")
	delete(m.cfg.Databases, "*")
	if got := connectErr(t, m.dsn("muxuser", "muxpass", "elsewhere")); got != "3D000" {
		t.Fatalf("SQLSTATE %q, want 3D000", got)
	}
}

func TestTrustUnknownRole(t *testing.T) {
	m := startMux(t, `auth_type = "trust"`)
	if got := connectErr(t, m.dsn("nosuchuser", "", "muxtest")); got != "28000" {
		t.Fatalf("SQLSTATE %q, want 28000", got)
	}
	// A known user needs no password.
	conn := m.connectAs(t, "muxuser", "", "muxtest")
	if got := queryString(t, conn, "SELECT current_user::text"); got != "muxuser" {
		t.Fatalf("current_user %q", got)
	}
}

func TestMaxClientConn(t *testing.T) {
	m := startMux(t, "max_client_conn = 3")
	var conns []*pgx.Conn
	for i := 0; i < 3; i++ {
		conns = append(conns, m.connect(t))
	}
	if got := connectErr(t, m.dsn("muxuser", "muxpass", "muxtest")); got != "53300" {
		t.Fatalf("SQLSTATE %q, want 53300", got)
	}
	for _, c := range conns {
		if got := queryString(t, c, "SELECT 'ok'::text"); got != "ok" {
			t.Fatal(got)
		}
	}
	conns[0].Close(context.Background())
	// The slot is free again once mux has seen the close.
	deadline := time.Now().Add(5 * time.Second)
	for m.p.NumClients() > 2 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	c := m.connect(t)
	if got := queryString(t, c, "SELECT 'ok'::text"); got != "ok" {
		t.Fatal(got)
	}
}

// md5 for clients; md5, cleartext and trust for servers.
func TestAuthMethods(t *testing.T) {
	m := startMux(t, `auth_type = "md5"`)
	for _, u := range []struct{ user, pw string }{
		{"muxuser", "muxpass"},     // server: scram
		{"md5user", "md5pass"},     // server: md5
		{"pwuser", "pwpass"},       // server: cleartext password
		{"trustuser", "trustpass"}, // server: trust
	} {
		conn := m.connectAs(t, u.user, u.pw, "muxtest")
		if got := queryString(t, conn, "SELECT current_user::text"); got != u.user {
			t.Fatalf("current_user %q, want %q", got, u.user)
		}
	}
	if got := connectErr(t, m.dsn("md5user", "wrong", "muxtest")); got != "28P01" {
		t.Fatalf("SQLSTATE %q, want 28P01", got)
	}
	if got := connectErr(t, m.dsn("ghost", "wrong", "muxtest")); got != "28P01" {
		t.Fatalf("SQLSTATE %q, want 28P01", got)
	}
}
