package hba

import (
	"strings"
	"testing"
)

func TestParseLDAPRow(t *testing.T) {
	f, err := Parse(strings.NewReader(`host all all 127.0.0.1/32 ldap ldapserver=127.0.0.1 ldapport=3890 ldapprefix="uid=" ldapsuffix=",ou=people,dc=example,dc=net"
hostssl all all all ldap ldapurl="ldap://h:1/dc=example,dc=net?uid?sub" ldaptls=1
`), "f")
	if err != nil {
		t.Fatal(err)
	}
	r := f.Rules[0]
	if r.Method != LDAP || r.LDAP == nil || r.LDAP.Prefix != "uid=" || r.LDAP.Suffix != ",ou=people,dc=example,dc=net" || r.LDAP.Port != 3890 {
		t.Fatalf("rule 1: %+v %+v", r, r.LDAP)
	}
	r = f.Rules[1]
	if r.LDAP == nil || r.LDAP.BaseDN != "dc=example,dc=net" || !r.LDAP.StartTLS || r.LDAP.Port != 1 {
		t.Fatalf("rule 2: %+v %+v", r, r.LDAP)
	}
}
