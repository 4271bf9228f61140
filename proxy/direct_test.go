package proxy

import (
	"crypto/tls"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/muxpg/mux/internal/wire"
)

// pgx with sslnegotiation=direct starts TLS at once, naming ALPN
// "postgresql": mux serves it, cancels included (pgx opens its cancel
// connection with direct TLS too), and checks mux's certificate.
func TestDirectTLS(t *testing.T) {
	f := newTLSFiles(t)
	m := startMux(t, f.clientTLSConfig("require")+"\ndefault_pool_size = 2")
	for _, extra := range []string{"sslmode=require sslnegotiation=direct",
		"sslmode=verify-full sslnegotiation=direct sslrootcert='" + f.caFile + "'",
		"sslmode=require sslnegotiation=direct max_protocol_version=3.2"} {
		conn, err := tryConnect(t, m, extra)
		if err != nil {
			t.Fatalf("%s: %v", extra, err)
		}
		if !isTLS(conn) {
			t.Fatalf("%s: connection is not TLS", extra)
		}
		tc := conn.PgConn().Conn().(*tls.Conn)
		if p := tc.ConnectionState().NegotiatedProtocol; p != "postgresql" {
			t.Fatalf("%s: ALPN %q, want postgresql", extra, p)
		}
		if n := len(conn.PgConn().SecretKey()); strings.Contains(extra, "3.2") != (n == 32) {
			t.Fatalf("%s: %d-byte cancel secret", extra, n)
		}
		if got := queryString(t, conn, "SELECT 'direct'::text"); got != "direct" {
			t.Fatal(got)
		}
		expectCancel(t, conn)
	}
	if _, err := tryConnect(t, m, "sslmode=verify-full sslnegotiation=direct sslrootcert='"+f.otherFile+"'"); err == nil {
		t.Fatal("verify-full direct client accepted mux's certificate against another CA")
	}
}

// dialDirect starts a direct TLS handshake with m offering protos (none if
// empty) and returns the connection and the handshake's error.
func dialDirect(t *testing.T, m *testMux, protos ...string) (*tls.Conn, error) {
	t.Helper()
	raw, err := net.DialTimeout("tcp", net.JoinHostPort(m.host, itoa(m.port)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	tc := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: protos})
	return tc, tc.Handshake()
}

// As PostgreSQL 17, a direct TLS handshake without ALPN "postgresql" fails
// with the alert no_application_protocol; with it, the startup goes on
// inside TLS.
func TestDirectTLSRequiresALPN(t *testing.T) {
	f := newTLSFiles(t)
	m, logs := observedMux(t, f.clientTLSConfig("prefer"))
	for _, protos := range [][]string{nil, {"h2", "http/1.1"}} {
		_, err := dialDirect(t, m, protos...)
		if err == nil || !strings.Contains(err.Error(), "no application protocol") {
			t.Fatalf("direct TLS offering ALPN %q: %v, want the alert no_application_protocol", protos, err)
		}
	}
	lastEntry(t, logs, "login failed")

	tc, err := dialDirect(t, m, "postgresql")
	if err != nil {
		t.Fatal(err)
	}
	// Inside direct TLS an SSLRequest is as out of place as a second one.
	if _, err := tc.Write(sslRequest()); err != nil {
		t.Fatal(err)
	}
	msg, err := pgproto3.NewFrontend(tc, tc).Receive()
	if e, ok := msg.(*pgproto3.ErrorResponse); err != nil || !ok || e.Code != "08P01" {
		t.Fatalf("SSLRequest inside direct TLS: %#v, %v", msg, err)
	}

	tc, err = dialDirect(t, m, "postgresql")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tc.Write(wire.StartupPacket(3<<16, "user", "muxuser", "database", "muxtest")); err != nil {
		t.Fatal(err)
	}
	msg, err = pgproto3.NewFrontend(tc, tc).Receive()
	if _, ok := msg.(*pgproto3.AuthenticationSASL); err != nil || !ok {
		t.Fatalf("startup inside direct TLS: %#v, %v", msg, err)
	}
}

// After an SSLRequest mux offers ALPN "postgresql" too, and takes clients
// that name none; a client naming only other protocols is refused, as by
// PostgreSQL 17.
func TestSSLRequestALPN(t *testing.T) {
	f := newTLSFiles(t)
	m := startMux(t, f.clientTLSConfig("prefer"))
	for _, tc := range []struct {
		protos []string
		want   string // negotiated protocol; "-" for a refused handshake
	}{
		{nil, ""},
		{[]string{"postgresql"}, "postgresql"},
		{[]string{"h2"}, "-"},
	} {
		raw, err := net.DialTimeout("tcp", net.JoinHostPort(m.host, itoa(m.port)), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
		var b [1]byte
		if _, err := raw.Write(sslRequest()); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(raw, b[:]); err != nil || b[0] != 'S' {
			t.Fatalf("SSLRequest answered %q, %v", b[0], err)
		}
		c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, NextProtos: tc.protos})
		err = c.Handshake()
		switch {
		case tc.want == "-" && err == nil:
			t.Errorf("ALPN %q: handshake succeeded", tc.protos)
		case tc.want != "-" && err != nil:
			t.Errorf("ALPN %q: %v", tc.protos, err)
		case err == nil && c.ConnectionState().NegotiatedProtocol != tc.want:
			t.Errorf("ALPN %q: negotiated %q, want %q", tc.protos, c.ConnectionState().NegotiatedProtocol, tc.want)
		}
		raw.Close()
	}
}

// Without client TLS a direct TLS hello is closed without a byte (the
// client could not read a plain-text error) and logged.
func TestDirectTLSWithoutClientTLS(t *testing.T) {
	m, logs := observedMux(t, "")
	if _, err := tryConnect(t, m, "sslmode=require sslnegotiation=direct"); err == nil {
		t.Fatal("direct TLS client connected to a mux without client TLS")
	}
	e := lastEntry(t, logs, "login failed")
	if msg, _ := e.ContextMap()["error"].(string); !strings.Contains(msg, "direct TLS connection refused") {
		t.Fatalf("logged %v", e.ContextMap())
	}

	raw, err := net.DialTimeout("tcp", net.JoinHostPort(m.host, itoa(m.port)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	// The start of a ClientHello record: handshake, TLS 1.0 record version.
	if _, err := raw.Write([]byte{0x16, 0x03, 0x01, 0x00, 0xc0, 0x01}); err != nil {
		t.Fatal(err)
	}
	// EOF, or a reset as the hello's unread bytes are dropped.
	var b [64]byte
	if n, err := raw.Read(b[:]); n != 0 || err == nil || isTimeout(err) {
		t.Fatalf("after a direct TLS hello: %d bytes (%q), %v", n, b[:n], err)
	}
}

func isTimeout(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}

// Direct TLS applies client_tls_sslmode as an SSLRequest does: under
// verify-full a client needs a certificate from the CA naming its user.
func TestDirectTLSVerifyFull(t *testing.T) {
	f := newTLSFiles(t)
	m := startMux(t, f.clientTLSConfig("verify-full"))
	direct := "sslmode=require sslnegotiation=direct"
	if _, err := tryConnect(t, m, direct); err == nil {
		t.Fatal("direct TLS client without a certificate admitted under verify-full")
	}
	if _, err := tryConnect(t, m, direct, f.clientCert(t, "someoneelse", false)); sqlstate(err) != "28000" {
		t.Fatalf("certificate for another user: %v, want 28000", err)
	}
	conn, err := tryConnect(t, m, direct, f.clientCert(t, "muxuser", false))
	if err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, conn, "SELECT 'verified'::text"); got != "verified" {
		t.Fatal(got)
	}
}

// client_tls_ecdhcurve limits the key exchange curves: a client offering
// only another curve fails the handshake; one offering it gets it.
func TestClientTLSECDHCurve(t *testing.T) {
	f := newTLSFiles(t)
	m := startMux(t, f.clientTLSConfig("prefer")+"\nclient_tls_ecdhcurve = \"secp384r1\"")
	for _, tc := range []struct {
		offer []tls.CurveID
		ok    bool
	}{
		{[]tls.CurveID{tls.CurveP256}, false},
		{[]tls.CurveID{tls.CurveP256, tls.CurveP384}, true},
	} {
		raw, err := net.DialTimeout("tcp", net.JoinHostPort(m.host, itoa(m.port)), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
		var b [1]byte
		if _, err := raw.Write(sslRequest()); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(raw, b[:]); err != nil || b[0] != 'S' {
			t.Fatalf("SSLRequest answered %q, %v", b[0], err)
		}
		c := tls.Client(raw, &tls.Config{InsecureSkipVerify: true, CurvePreferences: tc.offer})
		err = c.Handshake()
		switch {
		case tc.ok && err != nil:
			t.Errorf("offering %v: %v", tc.offer, err)
		case !tc.ok && err == nil:
			t.Errorf("offering %v: handshake succeeded with curve %v", tc.offer, c.ConnectionState().CurveID)
		case tc.ok && c.ConnectionState().CurveID != tls.CurveP384:
			t.Errorf("offering %v: curve %v, want P-384", tc.offer, c.ConnectionState().CurveID)
		}
		raw.Close()
	}
}
