// Package slapdtest starts a throwaway OpenLDAP server (slapd) for tests.
package slapdtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// The directory every server holds.
const (
	BaseDN  = "dc=example,dc=net"
	AdminDN = "cn=admin," + BaseDN
	AdminPW = "adminpw"
	// PeopleDN is where the users are.
	PeopleDN = "ou=people," + BaseDN
)

// Slapd is the path of the server binary (Debian's slapd package).
const Slapd = "/usr/sbin/slapd"

// User is an entry under PeopleDN: uid=UID, with cn and mail.
type User struct {
	UID, Password, Mail string
}

// DN returns the user's entry name.
func (u User) DN() string { return "uid=" + u.UID + "," + PeopleDN }

// Server is a running slapd.
type Server struct {
	Host    string
	Port    int // ldap:// (StartTLS too when TLS is on)
	TLSPort int // ldaps://; 0 without TLS
}

// TLS names the certificate and key (PEM files) slapd serves TLS with.
type TLS struct {
	CertFile, KeyFile string
}

// Addr returns host:port.
func (s *Server) Addr() string { return net.JoinHostPort(s.Host, fmt.Sprint(s.Port)) }

// Start loads users into a new database and starts slapd on a free port
// of 127.0.0.1; it stops when the test ends. A missing slapd fails the
// test: LDAP support must be tested.
func Start(t testing.TB, users ...User) *Server {
	t.Helper()
	return StartTLS(t, nil, users...)
}

// StartTLS is Start with TLS (ldaps and StartTLS) when tc is not nil.
func StartTLS(t testing.TB, tc *TLS, users ...User) *Server {
	t.Helper()
	if _, err := os.Stat(Slapd); err != nil {
		t.Fatalf("%s is missing: install it (apt-get install slapd ldap-utils) to test LDAP authentication: %v", Slapd, err)
	}
	dir := t.TempDir()
	conf := writeConfig(t, dir, tc)
	load(t, conf, users)
	s := &Server{Host: "127.0.0.1", Port: freePort(t)}
	urls := fmt.Sprintf("ldap://%s/", s.Addr())
	if tc != nil {
		s.TLSPort = freePort(t)
		urls += fmt.Sprintf(" ldaps://%s/", net.JoinHostPort(s.Host, fmt.Sprint(s.TLSPort)))
	}
	cmd := exec.Command(Slapd, "-f", conf, "-h", urls, "-d", "0")
	logPath := filepath.Join(dir, "slapd.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start slapd: %v", err)
	}
	// No goroutine waits for slapd (tests check for leaked goroutines
	// before this cleanup runs): it is killed and reaped at the end.
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	})
	waitListening(t, s.Addr(), logPath)
	if tc != nil {
		waitListening(t, net.JoinHostPort(s.Host, fmt.Sprint(s.TLSPort)), logPath)
	}
	return s
}

func writeConfig(t testing.TB, dir string, tc *TLS) string {
	t.Helper()
	db := filepath.Join(dir, "db")
	if err := os.Mkdir(db, 0o700); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, s := range []string{"core", "cosine", "inetorgperson"} {
		fmt.Fprintf(&b, "include /etc/ldap/schema/%s.schema\n", s)
	}
	fmt.Fprintf(&b, "modulepath /usr/lib/ldap\nmoduleload back_mdb\n")
	fmt.Fprintf(&b, "pidfile %s\n", filepath.Join(dir, "slapd.pid"))
	if tc != nil {
		fmt.Fprintf(&b, "TLSCertificateFile %s\nTLSCertificateKeyFile %s\n", tc.CertFile, tc.KeyFile)
	}
	fmt.Fprintf(&b, "database mdb\nmaxsize 16777216\nsuffix %q\nrootdn %q\nrootpw %s\ndirectory %s\n",
		BaseDN, AdminDN, AdminPW, db)
	// Anyone may bind and read entries, but never the passwords.
	b.WriteString("access to attrs=userPassword by anonymous auth by * none\naccess to * by * read\n")
	conf := filepath.Join(dir, "slapd.conf")
	if err := os.WriteFile(conf, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return conf
}

// load adds the base entries and users with slapadd, before slapd runs.
func load(t testing.TB, conf string, users []User) {
	t.Helper()
	var b strings.Builder
	fmt.Fprintf(&b, "dn: %s\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: example\n\n", BaseDN)
	fmt.Fprintf(&b, "dn: %s\nobjectClass: organizationalUnit\nou: people\n\n", PeopleDN)
	for _, u := range users {
		fmt.Fprintf(&b, "dn: %s\nobjectClass: inetOrgPerson\nuid: %s\ncn: %s\nsn: %s\nuserPassword: %s\n",
			u.DN(), u.UID, u.UID, u.UID, u.Password)
		if u.Mail != "" {
			fmt.Fprintf(&b, "mail: %s\n", u.Mail)
		}
		b.WriteString("\n")
	}
	ldif := filepath.Join(filepath.Dir(conf), "init.ldif")
	if err := os.WriteFile(ldif, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	slapadd := filepath.Join(filepath.Dir(Slapd), "slapadd")
	if out, err := exec.Command(slapadd, "-f", conf, "-l", ldif).CombinedOutput(); err != nil {
		t.Fatalf("slapadd: %v\n%s", err, out)
	}
}

func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// waitListening waits until slapd accepts connections.
func waitListening(t testing.TB, addr, logPath string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	out, _ := os.ReadFile(logPath)
	t.Fatalf("slapd did not listen on %s within 30s:\n%s", addr, out)
}
