package proxy

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/muxpg/mux/internal/cancelkey"
	"github.com/muxpg/mux/internal/wire"
)

// The protocol version a client asks for decides what it hears first:
// 3.0 and 3.2 go straight to authentication, anything else (3.1, 3.3 and
// up) or an unknown "_pq_." option gets NegotiateProtocolVersion with the
// version the session speaks and the options mux does not know.
func TestProtocolVersionNegotiation(t *testing.T) {
	m := startMux(t, "")
	for _, tc := range []struct {
		minor   uint32
		pq      bool
		want    uint32 // the version in NegotiateProtocolVersion; 0: none sent
		options int
	}{
		{minor: 0},
		{minor: 2},
		{minor: 0, pq: true, want: 3<<16 | 0, options: 1},
		{minor: 2, pq: true, want: 3<<16 | 2, options: 1},
		{minor: 1, want: 3<<16 | 0},
		{minor: 3, want: 3<<16 | 2},
		{minor: 99, pq: true, want: 3<<16 | 2, options: 1},
	} {
		conn, err := net.DialTimeout("tcp", net.JoinHostPort(m.host, itoa(m.port)), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		params := []string{"user", "muxuser", "database", "muxtest"}
		if tc.pq {
			params = append(params, "_pq_.future_feature", "on")
		}
		if _, err := conn.Write(wire.StartupPacket(3<<16|tc.minor, params...)); err != nil {
			t.Fatal(err)
		}
		fe := pgproto3.NewFrontend(conn, conn)
		msg, err := fe.Receive()
		if err != nil {
			t.Fatalf("3.%d: %v", tc.minor, err)
		}
		if nv, ok := msg.(*pgproto3.NegotiateProtocolVersion); ok {
			if nv.NewestMinorProtocol != tc.want || len(nv.UnrecognizedOptions) != tc.options ||
				(tc.pq && nv.UnrecognizedOptions[0] != "_pq_.future_feature") {
				t.Fatalf("3.%d (pq %v): NegotiateProtocolVersion %+v, want version %#x", tc.minor, tc.pq, nv, tc.want)
			}
			msg, err = fe.Receive()
			if err != nil {
				t.Fatal(err)
			}
		} else if tc.want != 0 {
			t.Fatalf("3.%d (pq %v): got %T, want NegotiateProtocolVersion", tc.minor, tc.pq, msg)
		}
		if _, ok := msg.(*pgproto3.AuthenticationSASL); !ok {
			t.Fatalf("3.%d: got %T, want the authentication request", tc.minor, msg)
		}
		conn.Close()
	}
}

// A pgx client asking for protocol 3.2 gets a 32-byte cancel secret (3.0
// ones get 4 bytes), though mux talks 3.0 to Postgres 15; CancelRequest
// with the whole key cancels its query, and a wrong or shortened key does
// nothing.
func TestProtocol32CancelKey(t *testing.T) {
	m := startMux(t, "default_pool_size = 3")
	old := m.connect(t)
	if n := len(old.PgConn().SecretKey()); n != cancelkey.ShortSecretLen {
		t.Fatalf("3.0 client got a %d-byte secret", n)
	}
	conn := m.connect(t, "max_protocol_version=3.2")
	secret := conn.PgConn().SecretKey()
	if len(secret) != cancelkey.LongSecretLen {
		t.Fatalf("3.2 client got a %d-byte secret, want %d", len(secret), cancelkey.LongSecretLen)
	}
	conn32 := m.connect(t, "min_protocol_version=3.2")
	if n := len(conn32.PgConn().SecretKey()); n != cancelkey.LongSecretLen {
		t.Fatalf("min_protocol_version=3.2 client got a %d-byte secret", n)
	}

	pid := conn.PgConn().PID()
	wrong := append([]byte(nil), secret...)
	wrong[len(wrong)/2] ^= 0x40
	errc := make(chan error, 1)
	go func() {
		_, err := conn.Exec(context.Background(), "SELECT pg_sleep(2)")
		errc <- err
	}()
	time.Sleep(300 * time.Millisecond)
	for _, s := range [][]byte{wrong, secret[:cancelkey.ShortSecretLen], secret[:cancelkey.LongSecretLen-1]} {
		sendCancel(t, m, pid, s)
	}
	select {
	case err := <-errc:
		if err != nil {
			t.Fatalf("query under wrong cancel keys: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("pg_sleep(2) did not end")
	}
	expectCancel(t, conn)
	if got := queryString(t, conn32, "SELECT 'untouched'::text"); got != "untouched" {
		t.Fatal(got)
	}
}
