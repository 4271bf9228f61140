package proxy

import (
	"context"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/muxpg/mux/internal/testpki"
)

func writeIdent(t *testing.T, lines string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ident.conf")
	if err := os.WriteFile(path, []byte(lines), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// A cert row with map= admits the users its map lets the certificate's CN
// be, and no one else: not even the user the CN names (as in Postgres, a
// map replaces the name check).
func TestHBACertMap(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "mux test CA")
	var k pkiFiles
	k.ca = ca.WriteCA(t, dir, "ca.pem")
	k.cert, k.key = ca.WriteLeaf(t, dir, "server", "localhost", "127.0.0.1", "localhost")
	alice, aliceKey := ca.WriteLeaf(t, dir, "alice", "alice")
	mail, mailKey := ca.WriteLeaf(t, dir, "mail", "md5user@example.com")
	own, ownKey := ca.WriteLeaf(t, dir, "own", "muxuser")
	rules := writeHBA(t, "hostssl all all 127.0.0.1/32 cert map=m\n")
	maps := writeIdent(t, "m alice muxuser\nm /^(.*)@example\\.com$ \\1\n")
	m := startMux(t, fmt.Sprintf(`auth_hba_file = %q
auth_ident_file = %q
client_tls_sslmode = "require"
client_tls_cert_file = %q
client_tls_key_file = %q
client_tls_ca_file = %q`, rules, maps, k.cert, k.key, k.ca))
	for _, c := range []struct {
		a    clientCert
		user string
		want string // SQLSTATE; "" = admitted as user
	}{
		{clientCert{"CN alice, mapped to muxuser", alice, aliceKey}, "muxuser", ""},
		{clientCert{"CN alice as md5user, not mapped", alice, aliceKey}, "md5user", "28000"},
		{clientCert{"CN muxuser, not in the map", own, ownKey}, "muxuser", "28000"},
		{clientCert{"CN md5user@example.com as md5user, by the regular expression's \\1", mail, mailKey}, "md5user", ""},
		{clientCert{"CN md5user@example.com as muxuser, not what \\1 gives", mail, mailKey}, "muxuser", "28000"},
		{clientCert{name: "no certificate"}, "muxuser", "28000"},
	} {
		got, err := c.a.login(m.port, k.ca, c.user)
		if code := sqlstate(err); code != c.want || (c.want == "" && (err != nil || got != c.user)) {
			t.Errorf("%s: current_user %q, %v (SQLSTATE %q), want %q", c.a.name, got, err, code, c.want)
		}
	}
	_, err := (clientCert{"alice", alice, aliceKey}).login(m.port, k.ca, "md5user")
	if want := `certificate authentication failed for user "md5user": no match in usermap "m" for user "md5user" authenticated as "alice"`; err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("refusal %v, want %q", err, want)
	}
	// A reload reads the map file again.
	if err := os.WriteFile(maps, []byte("m alice md5user\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	m.reload(t, m.cfg)
	if _, err := (clientCert{"alice", alice, aliceKey}).login(m.port, k.ca, "md5user"); err != nil {
		t.Errorf("after reload, CN alice as md5user: %v", err)
	}
	if _, err := (clientCert{"alice", alice, aliceKey}).login(m.port, k.ca, "muxuser"); sqlstate(err) != "28000" {
		t.Errorf("after reload, CN alice as muxuser: %v, want 28000", err)
	}
}

// login logs in as user with a's certificate and returns current_user.
func (a clientCert) login(port int, caFile, user string) (string, error) {
	dsn := fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=muxtest sslmode=verify-ca sslrootcert=%s", port, user, caFile)
	if a.cert != "" {
		dsn += fmt.Sprintf(" sslcert=%s sslkey=%s", a.cert, a.key)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var got string
	err = conn.QueryRow(ctx, "SELECT current_user::text").Scan(&got)
	return got, err
}

// A peer row with map= admits the OS user as the users its map lists.
func TestHBAPeerMap(t *testing.T) {
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rules := writeHBA(t, "local all all peer map=m\n")
	maps := writeIdent(t, fmt.Sprintf("m %q muxuser\nm someoneelse md5user\n", me.Username))
	startMux(t, fmt.Sprintf(`listen = []
unix_socket_dir = %q
auth_hba_file = %q
auth_ident_file = %q`, dir, rules, maps))
	login := func(u string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, fmt.Sprintf("host=%s port=6432 user=%s dbname=muxtest", dir, u))
		if err != nil {
			return "", err
		}
		defer conn.Close(ctx)
		var got string
		err = conn.QueryRow(ctx, "SELECT current_user::text").Scan(&got)
		return got, err
	}
	if got, err := login("muxuser"); err != nil || got != "muxuser" {
		t.Fatalf("OS user %s as muxuser (mapped): %q, %v", me.Username, got, err)
	}
	if _, err := login("md5user"); sqlstate(err) != "28000" {
		t.Fatalf("OS user %s as md5user (not mapped): %v, want 28000", me.Username, err)
	}
}
