package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/muxpg/mux/internal/testpki"
)

func writeTemp(t *testing.T, dir, name, data string) string {
	t.Helper()
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(data), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestResolve(t *testing.T) {
	dir := t.TempDir()
	users := writeTemp(t, dir, "userlist.txt", `"alice" "from-file"
"bob" "first"
"bob" "second"
`)
	rules := writeTemp(t, dir, "hba.conf", "host all all 127.0.0.1/32 scram-sha-256\n")
	ca := testpki.NewCA(t, "resolve CA")
	caFile := ca.WriteCA(t, dir, "ca.crt")
	cert, key := ca.WriteLeaf(t, dir, "mux", "mux", "127.0.0.1")
	c := mustParse(t, fmt.Sprintf(`auth_file = %q
auth_hba_file = %q
client_tls_sslmode = "verify-ca"
client_tls_cert_file = %q
client_tls_key_file = %q
client_tls_ca_file = %q
server_tls_sslmode = "verify-full"
server_tls_ca_file = %q
[users.alice]
password = "from-toml"
`, users, rules, cert, key, caFile, caFile)+minimalDB)
	s, err := Resolve(c)
	if err != nil {
		t.Fatal(err)
	}
	if s.Config != c {
		t.Error("the snapshot holds another config")
	}
	// [users] wins over auth_file; of two auth_file lines the later wins.
	if len(s.Users) != 2 || s.Users["alice"].Password != "from-toml" || s.Users["bob"].Password != "second" {
		t.Errorf("users %+v", s.Users)
	}
	if s.HBA == nil || len(s.HBA.Rules) != 1 {
		t.Errorf("hba %+v", s.HBA)
	}
	if ct := s.ClientTLS; ct.Cert == nil || ct.Cert.Leaf == nil || ct.Cert.Leaf.Subject.CommonName != "mux" || ct.CAs == nil {
		t.Errorf("client TLS %+v", ct)
	}
	if st := s.ServerTLS; st.Cert != nil || st.CAs == nil {
		t.Errorf("server TLS %+v", st)
	}

	// Without those settings nothing is read.
	s, err = Resolve(mustParse(t, minimalDB))
	if err != nil {
		t.Fatal(err)
	}
	if len(s.Users) != 0 || s.HBA != nil || s.ClientTLS != (TLSFiles{}) || s.ServerTLS != (TLSFiles{}) {
		t.Errorf("empty config resolved to %+v", s)
	}
}

// Every file that cannot be read or parsed is reported, each under its
// key, and no snapshot is made.
func TestResolveErrors(t *testing.T) {
	dir := t.TempDir()
	users := writeTemp(t, dir, "userlist.txt", "\"alice\" \"pw\"\n\"carol\" \"SCRAM-SHA-256$broken\"\n")
	rules := writeTemp(t, dir, "hba.conf", "host all all 127.0.0.1/32 ident\n")
	notPEM := writeTemp(t, dir, "junk.pem", "not a certificate\n")
	cfg := fmt.Sprintf(`auth_file = %q
auth_hba_file = %q
client_tls_sslmode = "require"
client_tls_cert_file = %q
client_tls_key_file = %q
server_tls_sslmode = "verify-ca"
server_tls_ca_file = %q
`, users, rules, notPEM, notPEM, notPEM) + minimalDB
	s, err := Resolve(mustParse(t, cfg))
	if s != nil || err == nil {
		t.Fatalf("Resolve = %v, %v", s, err)
	}
	for _, want := range []string{
		`auth_file: ` + users + `: user "carol"`,
		"auth_hba_file: " + rules + ":1:",
		"client_tls_cert_file, client_tls_key_file: ",
		"server_tls_ca_file: no PEM certificate in " + notPEM,
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}

	path := writeTemp(t, dir, "mux.toml", cfg)
	if _, err := Load(path); err == nil || !strings.HasPrefix(err.Error(), "config "+path+":\n") || !strings.Contains(err.Error(), "auth_hba_file: ") {
		t.Errorf("Load: %v", err)
	}
	writeTemp(t, dir, "userlist.txt", "alice pw\n")
	if _, err := Resolve(mustParse(t, fmt.Sprintf("auth_file = %q\n", users)+minimalDB)); err == nil ||
		err.Error() != "auth_file: "+users+`:1: user name: missing opening double quote; want "user" "password"` {
		t.Errorf("malformed auth_file: %v", err)
	}
}

// auth_ident_file's maps reach the rules; a map= that names no map, and
// a broken map file, are refused at load with the key and the line.
func TestResolveIdentMaps(t *testing.T) {
	dir := t.TempDir()
	rules := writeTemp(t, dir, "hba.conf", "host all all 127.0.0.1/32 scram-sha-256\nlocal all all peer map=admins\n")
	maps := writeTemp(t, dir, "ident.conf", "admins root postgres\n")
	s, err := Resolve(mustParse(t, fmt.Sprintf("auth_hba_file = %q\nauth_ident_file = %q\n", rules, maps)+minimalDB))
	if err != nil {
		t.Fatal(err)
	}
	if s.HBA.Maps == nil || s.HBA.Maps.Allows("admins", "root", "postgres") == nil {
		t.Fatalf("maps %+v", s.HBA.Maps)
	}

	for _, c := range []struct{ ident, identFile, want string }{
		{"", "", "auth_hba_file: " + rules + ":2: map=admins needs auth_ident_file"},
		{"others root postgres\n", "ident.conf", "auth_hba_file: " + rules + `:2: map=admins: auth_ident_file ` + maps + ` has no line for map "admins"`},
		{"admins root\n", "ident.conf", "auth_ident_file: " + maps + ":1: missing entry"},
	} {
		conf := fmt.Sprintf("auth_hba_file = %q\n", rules)
		if c.identFile != "" {
			writeTemp(t, dir, c.identFile, c.ident)
			conf += fmt.Sprintf("auth_ident_file = %q\n", maps)
		}
		_, err := Resolve(mustParse(t, conf+minimalDB))
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Resolve: %v, want %q", err, c.want)
		}
	}
}

func TestIdentFileNeedsHBAFile(t *testing.T) {
	maps := writeTemp(t, t.TempDir(), "ident.conf", "admins root postgres\n")
	_, err := Parse([]byte(fmt.Sprintf("auth_ident_file = %q\n", maps) + minimalDB))
	if err == nil || !strings.Contains(err.Error(), "auth_ident_file: needs auth_hba_file") {
		t.Fatalf("Parse: %v", err)
	}
}
