package proxy

import (
	"context"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/muxpg/mux/auth"
	"github.com/muxpg/mux/internal/pgtest"
	"github.com/muxpg/mux/internal/testpki"
	"github.com/muxpg/mux/internal/wire"
)

// tlsFiles are a throwaway CA, mux's certificate for 127.0.0.1 and a
// second, unrelated CA, written to a test's temporary directory.
type tlsFiles struct {
	dir               string
	ca, other         *testpki.CA
	caFile, otherFile string
	cert, key         string // mux's certificate and key
}

func newTLSFiles(t *testing.T) *tlsFiles {
	t.Helper()
	f := &tlsFiles{dir: t.TempDir(), ca: testpki.NewCA(t, "mux test CA"), other: testpki.NewCA(t, "other CA")}
	f.caFile = f.ca.WriteCA(t, f.dir, "ca.crt")
	f.otherFile = f.other.WriteCA(t, f.dir, "other.crt")
	f.cert, f.key = f.ca.WriteLeaf(t, f.dir, "mux", "mux", "127.0.0.1", "localhost")
	return f
}

// clientCert issues a client certificate with common name cn (from the
// other CA if untrusted) and returns the DSN keywords that present it.
func (f *tlsFiles) clientCert(t *testing.T, cn string, untrusted bool) string {
	t.Helper()
	ca := f.ca
	if untrusted {
		ca = f.other
	}
	name := fmt.Sprintf("client-%s-%v", cn, untrusted)
	cert, key := ca.WriteLeaf(t, f.dir, name, cn)
	return fmt.Sprintf("sslcert='%s' sslkey='%s'", cert, key)
}

// clientTLSConfig is the mux config for client TLS in mode.
func (f *tlsFiles) clientTLSConfig(mode string) string {
	return fmt.Sprintf("client_tls_sslmode = %q\nclient_tls_cert_file = %q\nclient_tls_key_file = %q\nclient_tls_ca_file = %q",
		mode, f.cert, f.key, f.caFile)
}

// tryConnect connects through m as muxuser and returns the connection or
// the error.
func tryConnect(t *testing.T, m *testMux, extra ...string) (*pgx.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, m.dsn("muxuser", "muxpass", "muxtest", extra...))
	if err == nil {
		t.Cleanup(func() { conn.Close(context.Background()) })
	}
	return conn, err
}

func isTLS(conn *pgx.Conn) bool {
	_, ok := conn.PgConn().Conn().(*tls.Conn)
	return ok
}

func TestClientTLSRequire(t *testing.T) {
	f := newTLSFiles(t)
	m := startMux(t, f.clientTLSConfig("require"))

	for _, extra := range []string{"sslmode=require", "sslmode=prefer",
		"sslmode=verify-full sslrootcert='" + f.caFile + "'"} {
		conn, err := tryConnect(t, m, extra)
		if err != nil {
			t.Fatalf("%s: %v", extra, err)
		}
		if !isTLS(conn) {
			t.Fatalf("%s: connection is not TLS", extra)
		}
		if got := queryString(t, conn, "SELECT 'over tls'::text"); got != "over tls" {
			t.Fatal(got)
		}
	}

	_, err := tryConnect(t, m) // sslmode=disable
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28000" || pe.Severity != "FATAL" ||
		pe.Message != "SSL required: this server only accepts encrypted connections (client_tls_sslmode = require)" {
		t.Fatalf("plain client: %v", err)
	}
	// mux's certificate is checked by verify-full clients.
	if _, err := tryConnect(t, m, "sslmode=verify-full sslrootcert='"+f.otherFile+"'"); err == nil {
		t.Fatal("verify-full client accepted mux's certificate against another CA")
	}
}

func TestClientTLSModes(t *testing.T) {
	f := newTLSFiles(t)
	for _, tc := range []struct {
		mode             string
		plainOK, needTLS bool
	}{
		{"disable", true, false},
		{"allow", true, true},
		{"prefer", true, true},
		{"require", false, true},
	} {
		t.Run(tc.mode, func(t *testing.T) {
			m := startMux(t, f.clientTLSConfig(tc.mode))
			if conn, err := tryConnect(t, m); (err == nil) != tc.plainOK || err == nil && isTLS(conn) {
				t.Fatalf("plain client: %v", err)
			}
			conn, err := tryConnect(t, m, "sslmode=require")
			if (err == nil) != tc.needTLS {
				t.Fatalf("sslmode=require: %v", err)
			}
			if err == nil && !isTLS(conn) {
				t.Fatal("sslmode=require got a plain connection")
			}
			// prefer uses TLS whenever mux offers it.
			if conn, err := tryConnect(t, m, "sslmode=prefer"); err != nil || isTLS(conn) != tc.needTLS {
				t.Fatalf("sslmode=prefer: %v", err)
			}
		})
	}
}

func TestClientTLSVerifyFull(t *testing.T) {
	f := newTLSFiles(t)
	m := startMux(t, f.clientTLSConfig("verify-full"))

	if _, err := tryConnect(t, m, "sslmode=require", f.clientCert(t, "muxuser", false)); err != nil {
		t.Fatalf("certificate for muxuser: %v", err)
	}
	_, err := tryConnect(t, m, "sslmode=require", f.clientCert(t, "someone", false))
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28000" || !strings.Contains(pe.Message, `certificate authentication failed for user "muxuser"`) ||
		!strings.Contains(pe.Message, `"someone"`) {
		t.Fatalf("certificate for someone else: %v", err)
	}
	if _, err := tryConnect(t, m, "sslmode=require"); err == nil {
		t.Fatal("client without a certificate accepted")
	}
	if _, err := tryConnect(t, m, "sslmode=require", f.clientCert(t, "muxuser", true)); err == nil {
		t.Fatal("certificate from an unknown CA accepted")
	}
	if _, err := tryConnect(t, m); sqlstate(err) != "28000" {
		t.Fatalf("plain client: %v", err)
	}
}

func TestClientTLSVerifyCA(t *testing.T) {
	f := newTLSFiles(t)
	m := startMux(t, f.clientTLSConfig("verify-ca"))
	if _, err := tryConnect(t, m, "sslmode=require", f.clientCert(t, "someone", false)); err != nil {
		t.Fatalf("verify-ca checks the CA only: %v", err)
	}
	if _, err := tryConnect(t, m, "sslmode=require", f.clientCert(t, "muxuser", true)); err == nil {
		t.Fatal("certificate from an unknown CA accepted")
	}
}

// Unix sockets never get TLS, and are not refused for lacking it.
func TestClientTLSUnixSocket(t *testing.T) {
	f := newTLSFiles(t)
	dir := t.TempDir()
	startMux(t, "listen = []\nunix_socket_dir = \""+dir+"\"\n"+f.clientTLSConfig("require"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dsn := "host=" + dir + " port=6432 user=muxuser password=muxpass dbname=muxtest"
	conn, err := pgx.Connect(ctx, dsn+" sslmode=prefer")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if isTLS(conn) {
		t.Fatal("TLS over a Unix socket")
	}
	// pgx does not even ask over a Unix socket; mux would say no.
	raw, err := net.DialTimeout("unix", filepath.Join(dir, ".s.PGSQL.6432"), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	_ = raw.SetDeadline(time.Now().Add(10 * time.Second))
	var b [1]byte
	if _, err := raw.Write(sslRequest()); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(raw, b[:]); err != nil || b[0] != 'N' {
		t.Fatalf("SSLRequest over a Unix socket answered %q, %v", b[0], err)
	}
}

func sslRequest() []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b[0:4], 8)
	binary.BigEndian.PutUint32(b[4:8], 80877103)
	return b
}

// dialTLS opens a TCP connection to m and negotiates TLS with SSLRequest.
func dialTLS(t *testing.T, m *testMux) *tls.Conn {
	t.Helper()
	conn, err := net.DialTimeout("tcp", net.JoinHostPort(m.host, strconv.Itoa(m.port)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write(sslRequest()); err != nil {
		t.Fatal(err)
	}
	var b [1]byte
	if _, err := io.ReadFull(conn, b[:]); err != nil || b[0] != 'S' {
		t.Fatalf("SSLRequest answered %q, %v", b[0], err)
	}
	tc := tls.Client(conn, &tls.Config{InsecureSkipVerify: true})
	if err := tc.Handshake(); err != nil {
		t.Fatal(err)
	}
	return tc
}

// endPoint returns the channel binding data of the certificate the server
// presented on conn.
func endPoint(t *testing.T, conn *tls.Conn) []byte {
	t.Helper()
	cb, err := auth.TLSServerEndPoint(conn.ConnectionState().PeerCertificates[0])
	if err != nil {
		t.Fatal(err)
	}
	return cb
}

// scramLogin logs in as muxuser on conn with a hand-made SCRAM exchange:
// mechanism mech, gs2 header gs2, and c= set to gs2 followed by cb. It
// returns the mechanisms offered and mux's ErrorResponse (nil: logged in).
func scramLogin(t *testing.T, conn net.Conn, mech, gs2 string, cb []byte) ([]string, *pgproto3.ErrorResponse) {
	t.Helper()
	fe := pgproto3.NewFrontend(conn, conn)
	if _, err := conn.Write(wire.StartupPacket(3<<16, "user", "muxuser", "database", "muxtest")); err != nil {
		t.Fatal(err)
	}
	recv := func() pgproto3.BackendMessage {
		t.Helper()
		msg, err := fe.Receive()
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	sasl, ok := recv().(*pgproto3.AuthenticationSASL)
	if !ok {
		t.Fatal("no AuthenticationSASL")
	}
	mechs := append([]string(nil), sasl.AuthMechanisms...)
	bare := "n=,r=clientnonce0123456789"
	fe.Send(&pgproto3.SASLInitialResponse{AuthMechanism: mech, Data: []byte(gs2 + bare)})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var serverFirst string
	switch msg := recv().(type) {
	case *pgproto3.ErrorResponse:
		return mechs, msg
	case *pgproto3.AuthenticationSASLContinue:
		serverFirst = string(msg.Data)
	default:
		t.Fatalf("got %T after client-first", msg)
	}
	attrs := map[byte]string{}
	for _, a := range strings.Split(serverFirst, ",") {
		attrs[a[0]] = a[2:]
	}
	salt, _ := base64.StdEncoding.DecodeString(attrs['s'])
	iter, _ := strconv.Atoi(attrs['i'])
	salted, err := pbkdf2.Key(sha256.New, "muxpass", salt, iter, 32)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	clientKey := mac(salted, "Client Key")
	storedKey := sha256.Sum256(clientKey)
	noProof := "c=" + base64.StdEncoding.EncodeToString(append([]byte(gs2), cb...)) + ",r=" + attrs['r']
	proof := mac(storedKey[:], bare+","+serverFirst+","+noProof)
	for i := range proof {
		proof[i] ^= clientKey[i]
	}
	fe.Send(&pgproto3.SASLResponse{Data: []byte(noProof + ",p=" + base64.StdEncoding.EncodeToString(proof))})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	switch msg := recv().(type) {
	case *pgproto3.ErrorResponse:
		return mechs, msg
	case *pgproto3.AuthenticationSASLFinal:
	default:
		t.Fatalf("got %T after client-final", msg)
	}
	if _, ok := recv().(*pgproto3.AuthenticationOk); !ok {
		t.Fatal("no AuthenticationOk")
	}
	return mechs, nil
}

func TestChannelBindingSCRAMPlus(t *testing.T) {
	f := newTLSFiles(t)
	m := startMux(t, f.clientTLSConfig("prefer"))

	conn, err := tryConnect(t, m, "sslmode=require channel_binding=require")
	if err != nil {
		t.Fatalf("channel_binding=require: %v", err)
	}
	if got := queryString(t, conn, "SELECT 'bound'::text"); got != "bound" {
		t.Fatal(got)
	}
	// Without TLS there is nothing to bind to: pgx refuses on its own.
	if _, err := tryConnect(t, m, "sslmode=disable channel_binding=require"); err == nil ||
		!strings.Contains(err.Error(), "channel binding") {
		t.Fatalf("channel_binding=require without TLS: %v", err)
	}

	const plus, plain = "SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"
	for _, tc := range []struct {
		name, mech, gs2 string
		wrongCB         bool
		code, msg       string
	}{
		{name: "plus", mech: plus, gs2: "p=tls-server-end-point,,"},
		{name: "no binding", mech: plain, gs2: "n,,"},
		{name: "wrong binding data", mech: plus, gs2: "p=tls-server-end-point,,", wrongCB: true,
			code: "28000", msg: "SCRAM channel binding check failed"},
		{name: "downgrade", mech: plain, gs2: "y,,", code: "28000", msg: "SCRAM channel binding negotiation error"},
		{name: "plus without binding", mech: plus, gs2: "n,,", code: "08P01", msg: "does not include channel binding data"},
		{name: "unsupported type", mech: plus, gs2: "p=tls-unique,,", code: "08P01", msg: "unsupported channel binding type"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc2 := dialTLS(t, m)
			cb := endPoint(t, tc2)
			if tc.wrongCB {
				cb = sha256.New().Sum(nil)
			}
			if !strings.HasPrefix(tc.gs2, "p=") {
				cb = nil // c= is the gs2 header alone
			}
			mechs, e := scramLogin(t, tc2, tc.mech, tc.gs2, cb)
			if strings.Join(mechs, ",") != plus+","+plain {
				t.Fatalf("offered %v over TLS", mechs)
			}
			if tc.code == "" {
				if e != nil {
					t.Fatalf("refused: %s %s", e.Code, e.Message)
				}
				return
			}
			if e == nil || e.Code != tc.code || !strings.Contains(e.Message, tc.msg) {
				t.Fatalf("got %+v, want %s %q", e, tc.code, tc.msg)
			}
		})
	}

	t.Run("plain connection", func(t *testing.T) {
		c, err := net.DialTimeout("tcp", net.JoinHostPort(m.host, strconv.Itoa(m.port)), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		mechs, e := scramLogin(t, c, plus, "p=tls-server-end-point,,", []byte("x"))
		if strings.Join(mechs, ",") != plain {
			t.Fatalf("offered %v without TLS", mechs)
		}
		if e == nil || e.Code != "08P01" || !strings.Contains(e.Message, "invalid SASL authentication mechanism") {
			t.Fatalf("got %+v", e)
		}
		// "y" is fine where no binding was offered.
		c2, err := net.DialTimeout("tcp", net.JoinHostPort(m.host, strconv.Itoa(m.port)), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		defer c2.Close()
		_ = c2.SetDeadline(time.Now().Add(10 * time.Second))
		if _, e := scramLogin(t, c2, plain, "y,,", nil); e != nil {
			t.Fatalf("y on a plain connection: %s %s", e.Code, e.Message)
		}
	})
}

// Requests inside TLS: a second SSLRequest is a protocol violation, a
// CancelRequest is served.
func TestClientTLSStartupRequests(t *testing.T) {
	f := newTLSFiles(t)
	m := startMux(t, f.clientTLSConfig("require"))

	c := dialTLS(t, m)
	if _, err := c.Write(sslRequest()); err != nil {
		t.Fatal(err)
	}
	msg, err := pgproto3.NewFrontend(c, c).Receive()
	if e, ok := msg.(*pgproto3.ErrorResponse); err != nil || !ok || e.Code != "08P01" {
		t.Fatalf("second SSLRequest: %#v, %v", msg, err)
	}

	// A CancelRequest for an unknown key: mux closes without a word.
	c = dialTLS(t, m)
	req := make([]byte, 16)
	binary.BigEndian.PutUint32(req[0:4], 16)
	binary.BigEndian.PutUint32(req[4:8], 80877102)
	binary.BigEndian.PutUint32(req[8:12], 1)
	if _, err := c.Write(req); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Read(req); n != 0 || err != io.EOF {
		t.Fatalf("after a cancel request: %d bytes, %v", n, err)
	}

	// Bytes sent after the SSLRequest, before the answer: refused in clear.
	payload := append(sslRequest(), wire.StartupPacket(3<<16, "user", "muxuser")...)
	if code := rawError(t, m, payload); code != "08P01" {
		t.Fatalf("bytes after SSLRequest: %s", code)
	}
}

func TestCancelOverTLS(t *testing.T) {
	f := newTLSFiles(t)
	m := startMux(t, f.clientTLSConfig("require")+"\ndefault_pool_size = 2")
	victim, err := tryConnect(t, m, "sslmode=require")
	if err != nil {
		t.Fatal(err)
	}
	expectCancel(t, victim)
}

// expectCancel runs a long query on conn, cancels it with pgconn's
// CancelRequest (over TLS if conn is) and checks it ends with 57014.
func expectCancel(t *testing.T, conn *pgx.Conn) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		_, err := conn.Exec(context.Background(), "SELECT pg_sleep(30)")
		errc <- err
	}()
	time.Sleep(300 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := conn.PgConn().CancelRequest(ctx); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-errc:
		if sqlstate(err) != "57014" {
			t.Fatalf("cancelled query returned %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("query was not cancelled")
	}
	if got := queryString(t, conn, "SELECT 'alive'::text"); got != "alive" {
		t.Fatal(got)
	}
}

// startTLSCluster starts a Postgres cluster that serves tlsuser (password
// tlspass) over TLS only, with a certificate for 127.0.0.1 from ca.
func startTLSCluster(t *testing.T, ca *testpki.CA) *pgtest.Cluster {
	t.Helper()
	cl, err := pgtest.Start(pgtest.Options{MaxConnections: 20, HBA: []string{
		"hostssl all tlsuser 127.0.0.1/32 scram-sha-256",
		"hostnossl all tlsuser 127.0.0.1/32 reject",
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cl.Stop() })
	cert, key := ca.Issue(t, "postgres", "127.0.0.1", "localhost")
	if _, err := cl.WriteDataFile("server.crt", cert); err != nil {
		t.Fatal(err)
	}
	if _, err := cl.WriteDataFile("server.key", key); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, q := range []string{"ALTER SYSTEM SET ssl = on", "SELECT pg_reload_conf()",
		"CREATE ROLE tlsuser LOGIN PASSWORD 'tlspass'"} {
		if err := cl.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	// The postmaster reloads asynchronously.
	dsn := fmt.Sprintf("host=%s port=%d user=postgres dbname=postgres sslmode=require", cl.Host, cl.Port)
	for {
		c, err := pgconn.Connect(ctx, dsn)
		if err == nil {
			c.Close(ctx)
			return cl
		}
		if ctx.Err() != nil {
			t.Fatalf("cluster does not accept TLS: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestServerTLSVerifyFull(t *testing.T) {
	f := newTLSFiles(t)
	cl := startTLSCluster(t, f.ca)
	serverConfig := func(ca string) string {
		return fmt.Sprintf(`server_tls_sslmode = "verify-full"
server_tls_ca_file = %q
query_wait_timeout = "2s"
# Attempts at 0, 50, 150, 350, 750 and 1550 ms, the next after the wait
# ends: the client is told the last attempt's error, not a cut-short dial.
server_login_retry = "5s"

[databases.tlsdb]
host = %q
port = %d
dbname = "postgres"

[users.tlsuser]
password = "tlspass"
`, ca, cl.Host, cl.Port)
	}
	// One mux at a time: each checks for leaked goroutines when it stops.
	t.Run("right CA", func(t *testing.T) {
		m := startMux(t, serverConfig(f.caFile))
		conn := m.connectAs(t, "tlsuser", "tlspass", "tlsdb")
		if got := queryString(t, conn, "SELECT ssl::text FROM pg_stat_ssl WHERE pid = pg_backend_pid()"); got != "true" {
			t.Fatalf("server connection ssl = %s", got)
		}
		// The cancel goes to Postgres over TLS too.
		expectCancel(t, conn)
	})
	t.Run("wrong CA", func(t *testing.T) {
		m := startMux(t, serverConfig(f.otherFile))
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_, err := pgx.Connect(ctx, m.dsn("tlsuser", "tlspass", "tlsdb"))
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "08006" || !strings.Contains(pe.Message, "server_tls_sslmode = verify-full") ||
			!strings.Contains(pe.Message, "certificate signed by unknown authority") {
			t.Fatalf("wrong CA: %v", err)
		}
		t.Logf("wrong CA: %s", pe.Message)
	})
}
