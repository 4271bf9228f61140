package proxy

import (
	"context"
	"crypto/tls"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/testpki"
)

func writeHBA(t *testing.T, lines string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hba.conf")
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestHBAReject(t *testing.T) {
	path := writeHBA(t, `# md5user may not come in over TCP
host all md5user 127.0.0.1/32 reject
host "muxtest" all 127.0.0.1/32 scram-sha-256
`)
	m := startMux(t, fmt.Sprintf("auth_hba_file = %q", path))
	if got := connectErr(t, m.dsn("md5user", "md5pass", "muxtest")); got != "28000" {
		t.Fatalf("rejected user: SQLSTATE %q, want 28000", got)
	}
	conn := m.connect(t)
	if got := queryString(t, conn, "SELECT current_user::text"); got != "muxuser" {
		t.Fatal(got)
	}
	// No rule for this database: refused.
	if got := connectErr(t, m.dsn("muxuser", "muxpass", "postgres")); got != "28000" {
		t.Fatalf("no matching rule: SQLSTATE %q, want 28000", got)
	}
}

func TestHBAPeerOnUnixSocket(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	path := writeHBA(t, "local all all peer\n")
	m := startMux(t, fmt.Sprintf(`listen = []
unix_socket_dir = %q
auth_hba_file = %q`, dir, path))
	// The OS user logs in as the same name; mux logs in to Postgres as
	// muxuser (the database entry's user).
	m.cfg.Users[me.Username] = usersEntryFor("unused-for-peer")
	m.cfg.Databases["peerdb"] = m.cfg.Databases["bench"]
	db := m.cfg.Databases["peerdb"]
	db.DBName, db.User, db.Password = "muxtest", "muxuser", "muxpass"
	m.cfg.Databases["peerdb"] = db
	m.reload(t, m.cfg)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=6432 user=%s dbname=peerdb", dir, me.Username))
	if err != nil {
		t.Fatalf("peer login as %s: %v", me.Username, err)
	}
	conn.Close(ctx)
	_, err = pgx.Connect(ctx, fmt.Sprintf("host=%s port=6432 user=muxuser dbname=peerdb", dir))
	if got := sqlstate(err); got != "28000" {
		t.Fatalf("peer login under another name: %v (SQLSTATE %q), want 28000", err, got)
	}
}

func TestHBACert(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "mux test CA")
	caFile := ca.WriteCA(t, dir, "ca.pem")
	certFile, keyFile := ca.WriteLeaf(t, dir, "server", "localhost", "127.0.0.1", "localhost")
	goodCert, goodKey := ca.WriteLeaf(t, dir, "good", "muxuser")
	badCert, badKey := ca.WriteLeaf(t, dir, "bad", "someoneelse")
	path := writeHBA(t, "hostssl all all 127.0.0.1/32 cert\n")
	m := startMux(t, fmt.Sprintf(`auth_hba_file = %q
client_tls_sslmode = "verify-ca"
client_tls_cert_file = %q
client_tls_key_file = %q
client_tls_ca_file = %q`, path, certFile, keyFile, caFile))
	connect := func(cert, key string) error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=muxuser dbname=muxtest sslmode=verify-ca sslrootcert=%s sslcert=%s sslkey=%s",
			m.port, caFile, cert, key)
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			var u string
			err = conn.QueryRow(ctx, "SELECT current_user::text").Scan(&u)
			conn.Close(ctx)
		}
		return err
	}
	if err := connect(goodCert, goodKey); err != nil {
		t.Fatalf("certificate login: %v", err)
	}
	if got := sqlstate(connect(badCert, badKey)); got != "28000" {
		t.Fatalf("certificate with another CN: SQLSTATE %q, want 28000", got)
	}
}

func usersEntryFor(password string) config.User { return config.User{Password: password} }

// Reload re-reads the TLS certificate: new connections get the new one.
func TestReloadTLSCertificate(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "reload CA")
	certFile, keyFile := ca.WriteLeaf(t, dir, "server", "first", "127.0.0.1")
	m := startMux(t, fmt.Sprintf("client_tls_sslmode = \"prefer\"\nclient_tls_cert_file = %q\nclient_tls_key_file = %q", certFile, keyFile))
	cn := func() string {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, strings.Replace(m.dsn("muxuser", "muxpass", "muxtest"), "sslmode=disable", "sslmode=require", 1))
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		tc, ok := conn.PgConn().Conn().(*tls.Conn)
		if !ok {
			t.Fatal("not a TLS connection")
		}
		return tc.ConnectionState().PeerCertificates[0].Subject.CommonName
	}
	if got := cn(); got != "first" {
		t.Fatalf("certificate CN %q, want first", got)
	}
	ca.WriteLeaf(t, dir, "server", "second", "127.0.0.1") // same file names
	m.reload(t, m.cfg)
	if got := cn(); got != "second" {
		t.Fatalf("after reload the certificate CN is %q, want second", got)
	}
}

// clientcert=verify-ca and verify-full are enforced before the row's
// method (a defect once let clients in without a certificate): mux asks
// TLS clients for one whenever client_tls_ca_file is set.
func TestHBAClientCert(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "mux test CA")
	var k pkiFiles
	k.ca = ca.WriteCA(t, dir, "ca.pem")
	k.cert, k.key = ca.WriteLeaf(t, dir, "server", "localhost", "127.0.0.1", "localhost")
	good, goodKey := ca.WriteLeaf(t, dir, "good", "muxuser")
	other, otherKey := ca.WriteLeaf(t, dir, "other", "someoneelse")
	attempts := []clientCert{{name: "no certificate"}, {"another CN", other, otherKey}, {"muxuser's", good, goodKey}}
	for option, want := range map[string][3]string{ // SQLSTATE of each attempt, "" = admitted
		"clientcert=verify-ca":   {"28000", "", ""},
		"clientcert=verify-full": {"28000", "28000", ""},
	} {
		t.Run(option, func(t *testing.T) {
			path := writeHBA(t, "hostssl all all 127.0.0.1/32 scram-sha-256 "+option+"\n")
			m := startMux(t, fmt.Sprintf(`auth_hba_file = %q
client_tls_sslmode = "require"
client_tls_cert_file = %q
client_tls_key_file = %q
client_tls_ca_file = %q`, path, k.cert, k.key, k.ca))
			for i, a := range attempts {
				err := a.connect(m.port, k.ca)
				if got := sqlstate(err); got != want[i] || (want[i] == "" && err != nil) {
					t.Errorf("%s: %v (SQLSTATE %q), want %q", a.name, err, got, want[i])
				}
			}
		})
	}
}

type pkiFiles struct{ ca, cert, key string }

// clientCert is a login attempt as muxuser with a client certificate (or
// none).
type clientCert struct{ name, cert, key string }

func (a clientCert) connect(port int, caFile string) error {
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=muxuser password=muxpass dbname=muxtest sslmode=verify-ca sslrootcert=%s", port, caFile)
	if a.cert != "" {
		dsn += fmt.Sprintf(" sslcert=%s sslkey=%s", a.cert, a.key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		conn.Close(ctx)
	}
	return err
}
