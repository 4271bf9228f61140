package proxy

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/muxpg/mux/internal/slapdtest"
)

// The LDAP directory of these tests. muxuser's LDAP password differs from
// its Postgres one (mux logs in to Postgres with [users]' muxpass);
// aq_scram is in no [users] table, so mux logs in with the password the
// client gave LDAP, which is also its Postgres password.
var ldapUsers = []slapdtest.User{
	{UID: "muxuser", Password: "ldapsecret", Mail: "mux@example.net"},
	{UID: "aq_scram", Password: "aqscrampass"},
}

// ldapLogin connects through m and returns the Postgres user of the
// session, or the error.
func ldapLogin(t *testing.T, m *testMux, user, password string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, m.dsn(user, password, "muxtest"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var got string
	err = conn.QueryRow(ctx, "SELECT current_user::text").Scan(&got)
	return got, err
}

// checkLDAPLogins runs the logins every LDAP mode must get right.
func checkLDAPLogins(t *testing.T, m *testMux) {
	t.Helper()
	if got, err := ldapLogin(t, m, "muxuser", "ldapsecret"); err != nil || got != "muxuser" {
		t.Fatalf("muxuser with its LDAP password: %q, %v", got, err)
	}
	if got, err := ldapLogin(t, m, "aq_scram", "aqscrampass"); err != nil || got != "aq_scram" {
		t.Fatalf("aq_scram (no [users] entry) with its LDAP password: %q, %v", got, err)
	}
	for _, tc := range []struct{ user, pw string }{
		{"muxuser", "muxpass"},   // its Postgres password is not its LDAP one
		{"aq_scram", "wrong"},    // wrong password
		{"nobody", "ldapsecret"}, // not in the directory
		{"muxuser", ""},          // empty password: an anonymous bind, never a login
	} {
		_, err := ldapLogin(t, m, tc.user, tc.pw)
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || pe.Code != "28000" || pe.Message != fmt.Sprintf("LDAP authentication failed for user %q", tc.user) {
			t.Fatalf("%s with password %q: %v, want 28000 LDAP authentication failed", tc.user, tc.pw, err)
		}
	}
}

func TestLDAPSimpleBind(t *testing.T) {
	srv := slapdtest.Start(t, ldapUsers...)
	m := startMux(t, fmt.Sprintf(`auth_type = "ldap"
auth_ldap_options = 'ldapserver=127.0.0.1 ldapport=%d ldapprefix="uid=" ldapsuffix=",%s"'`, srv.Port, slapdtest.PeopleDN))
	checkLDAPLogins(t, m)
}

func TestLDAPSearchBind(t *testing.T) {
	srv := slapdtest.Start(t, ldapUsers...)
	m := startMux(t, fmt.Sprintf(`auth_type = "ldap"
auth_ldap_options = 'ldapurl="ldap://%s/%s?uid?sub"'`, srv.Addr(), slapdtest.BaseDN))
	checkLDAPLogins(t, m)
	// A name that would change the search filter is refused before the
	// search, as in PostgreSQL.
	if _, err := ldapLogin(t, m, "*", "ldapsecret"); sqlstate(err) != "28000" {
		t.Fatalf("user *: %v, want 28000", err)
	}
}

func TestLDAPSearchFilterWithBindDN(t *testing.T) {
	srv := slapdtest.Start(t, ldapUsers...)
	m := startMux(t, fmt.Sprintf(`auth_type = "ldap"
auth_ldap_options = 'ldapserver=127.0.0.1 ldapport=%d ldapbasedn="%s" ldapbinddn="%s" ldapbindpasswd=%s ldapsearchfilter="(|(uid=$username)(mail=$username))"'`,
		srv.Port, slapdtest.BaseDN, slapdtest.AdminDN, slapdtest.AdminPW))
	checkLDAPLogins(t, m)
}

func TestLDAPHBARow(t *testing.T) {
	srv := slapdtest.Start(t, ldapUsers...)
	path := writeHBA(t, fmt.Sprintf(`host all benchuser 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 ldap ldapserver=127.0.0.1 ldapport=%d ldapbasedn="%s" ldapsearchattribute=uid
`, srv.Port, slapdtest.BaseDN))
	m := startMux(t, fmt.Sprintf("auth_hba_file = %q", path))
	checkLDAPLogins(t, m)
	// The scram row still asks for SCRAM.
	conn := m.connectAs(t, "benchuser", "benchpass", "bench")
	if got := queryString(t, conn, "SELECT current_user::text"); got != "benchuser" {
		t.Fatal(got)
	}
}

func TestLDAPServerUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close() // nothing listens there now
	m := startMux(t, fmt.Sprintf(`auth_type = "ldap"
auth_ldap_options = 'ldapserver=127.0.0.1 ldapport=%d ldapprefix="uid=" ldapsuffix=",%s"'`, port, slapdtest.PeopleDN))
	_, err = ldapLogin(t, m, "muxuser", "ldapsecret")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28000" || !strings.Contains(pe.Detail, "LDAP server") {
		t.Fatalf("unreachable LDAP server: %v (%+v), want 28000 with a detail naming the LDAP server", err, pe)
	}
}

// auth_ldap_options is reloadable: new logins use the new options.
func TestLDAPOptionsReload(t *testing.T) {
	srv := slapdtest.Start(t, ldapUsers...)
	m := startMux(t, fmt.Sprintf(`auth_type = "ldap"
auth_ldap_options = 'ldapserver=127.0.0.1 ldapport=%d ldapprefix="uid=" ldapsuffix=",%s"'`, srv.Port, slapdtest.PeopleDN))
	if _, err := ldapLogin(t, m, "muxuser", "ldapsecret"); err != nil {
		t.Fatal(err)
	}
	// A suffix no entry has: every bind fails.
	m.cfg.AuthLDAPOptions = fmt.Sprintf(`ldapserver=127.0.0.1 ldapport=%d ldapprefix="uid=" ldapsuffix=",ou=nowhere,%s"`, srv.Port, slapdtest.BaseDN)
	m.reload(t, m.cfg)
	if _, err := ldapLogin(t, m, "muxuser", "ldapsecret"); sqlstate(err) != "28000" {
		t.Fatalf("after reload: %v, want 28000", err)
	}
}
