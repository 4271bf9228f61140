package config

import (
	"strings"
	"testing"
)

func TestLDAPOptionsValidated(t *testing.T) {
	for _, tc := range []struct{ top, want string }{
		{`auth_type = "ldap"`, "auth_ldap_options: must be set when auth_type is ldap"},
		{"auth_type = \"ldap\"\nauth_ldap_options = 'ldapserver=h ldapprefix=\"cn=\" ldapfoo=1'", `auth_ldap_options: unknown LDAP option "ldapfoo"`},
		{"auth_type = \"ldap\"\nauth_ldap_options = 'ldapserver=h'", `auth_ldap_options: LDAP authentication requires "ldapbasedn"`},
		{"auth_type = \"ldap\"\nauth_user = \"bob\"\nauth_ldap_options = 'ldapserver=h ldapprefix=cn='\n", "auth_user: cannot be used with auth_type ldap"},
	} {
		_, err := Parse([]byte(tc.top + "\n" + minimalDB + "[users.bob]\npassword = \"x\"\n"))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.top, err, tc.want)
		}
	}
	c, err := Parse([]byte("auth_type = \"ldap\"\nauth_ldap_options = 'ldapurl=\"ldap://127.0.0.1:3890/dc=example,dc=net?uid?sub\"'\n" + minimalDB + "[users.bob]\n"))
	if err != nil {
		t.Fatalf("ldap with a user without password: %v", err)
	}
	if o := c.LDAPOptions(); o == nil || o.BaseDN != "dc=example,dc=net" {
		t.Fatalf("LDAPOptions = %+v", o)
	}
}

func TestRedactedLDAPOptions(t *testing.T) {
	for in, want := range map[string]string{
		`ldapserver=h ldapbasedn="dc=x" ldapbindpasswd=hunter2 ldapbinddn="cn=a"`: `ldapserver=h ldapbasedn="dc=x" ldapbindpasswd=*** ldapbinddn="cn=a"`,
		`ldapbindpasswd="a ""b"", c",ldapserver=h`:                                `ldapbindpasswd=***,ldapserver=h`,
		`ldapurl="ldap://h/dc=x?uid?sub"`:                                         `ldapurl="ldap://h/dc=x?uid?sub"`,
	} {
		c := &Config{AuthLDAPOptions: in}
		if got := c.Redacted().AuthLDAPOptions; got != want || strings.Contains(got, "hunter2") {
			t.Errorf("Redacted(%s) = %s, want %s", in, got, want)
		}
	}
}
