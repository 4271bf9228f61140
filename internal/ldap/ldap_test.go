package ldap

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/muxpg/mux/internal/slapdtest"
)

func TestParseOptions(t *testing.T) {
	o, err := ParseOptions(`ldapurl="ldap://127.0.0.1:12345/dc=example,dc=net?uid?sub"`)
	if err != nil {
		t.Fatal(err)
	}
	if o.Scheme != "ldap" || len(o.Servers) != 1 || o.Servers[0] != "127.0.0.1" || o.port() != 12345 ||
		o.BaseDN != "dc=example,dc=net" || o.attribute() != "uid" || o.Scope != ScopeSub {
		t.Fatalf("ldapurl: %+v", o)
	}
	o, err = ParseOptions(`ldapserver=ldap.example.net ldapprefix="cn=" ldapsuffix=",dc=example,dc=net"`)
	if err != nil {
		t.Fatal(err)
	}
	if !o.simpleBind() || o.Prefix != "cn=" || o.Suffix != ",dc=example,dc=net" || o.port() != 389 {
		t.Fatalf("simple: %+v", o)
	}
	o, err = ParseOptions(`ldapscheme=ldaps, ldapserver="a b" ldapbasedn="ou=x" ldapsearchfilter="(|(uid=$username)(mail=$username))"`)
	if err != nil {
		t.Fatal(err)
	}
	if o.port() != 636 || len(o.Servers) != 2 || o.filterFor("al") != "(|(uid=al)(mail=al))" {
		t.Fatalf("search filter: %+v", o)
	}
	o, err = ParseOptions(`ldapurl="ldaps://h/ou=p?cn?one?(objectClass=person)"`)
	if err != nil || o.Scope != ScopeOne || o.SearchAttribute != "cn" || o.SearchFilter != "(objectClass=person)" {
		// An URL with both an attribute and a filter is refused, as in PostgreSQL.
		if err == nil || !strings.Contains(err.Error(), "together") {
			t.Fatalf("url with attribute and filter: %+v %v", o, err)
		}
	}
}

func TestParseOptionsRefuses(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{`ldapserver=h ldapprefix=cn= ldapbogus=1`, `unknown LDAP option "ldapbogus"`},
		{`ldapserver=h`, `requires "ldapbasedn"`},
		{`ldapserver=h ldapprefix=cn= ldapbasedn=dc=x`, "cannot mix"},
		{`ldapserver=h ldapbasedn=dc=x ldapsearchattribute=uid ldapsearchfilter=(uid=$username)`, "together"},
		{`ldapprefix=cn=`, "ldapserver"},
		{`ldapserver=h ldapprefix=cn= ldapport=0`, "port"},
		{`ldapserver=h ldapprefix=cn= ldapscheme=http`, "ldapscheme"},
		{`ldapserver=h ldapprefix=cn= ldaptls=yes`, "ldaptls"},
		{`ldapserver=h ldapprefix=cn= ldaptls=1 ldapscheme=ldaps`, "ldaptls"},
		{`ldapserver=h ldapbasedn=dc=x ldapsearchfilter="(uid=$username"`, "ldapsearchfilter"},
		{`ldapurl="http://h/dc=x"`, "scheme"},
		{`ldapserver=h ldapprefix="cn=`, "unterminated"},
		{`ldapserver=h ldapserver=i ldapprefix=cn=`, "more than once"},
		{``, "no LDAP options"},
		{`justtext`, "key=value"},
	} {
		_, err := ParseOptions(tc.in)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseOptions(%q) = %v, want an error with %q", tc.in, err, tc.want)
		}
	}
}

func TestFromMap(t *testing.T) {
	o, err := FromMap(map[string]string{"ldapurl": "ldap://h:1/dc=x", "ldapport": "2"})
	if err != nil || o.port() != 2 || o.BaseDN != "dc=x" {
		t.Fatalf("FromMap: %+v %v", o, err)
	}
}

func TestEncodeFilter(t *testing.T) {
	// (uid=al): equalityMatch [3] { "uid", "al" }
	got, err := encodeFilter("(uid=al)")
	want := []byte{0xa3, 0x09, 0x04, 0x03, 'u', 'i', 'd', 0x04, 0x02, 'a', 'l'}
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("(uid=al) = % x, %v; want % x", got, err, want)
	}
	if got2, _ := encodeFilter("uid=al"); !bytes.Equal(got2, want) {
		t.Fatalf("without parentheses: % x", got2)
	}
	for _, f := range []string{"(&(objectClass=person)(|(uid=a*)(mail=*@x)))", "(!(cn=*))", `(cn=a\2ab)`, "(age>=3)", "(cn~=x)"} {
		if _, err := encodeFilter(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	for _, f := range []string{"(uid=a", "(=a)", "(&)", "(uid=a)(x=b)", `(cn=\2)`, "(cn:dn:=x)", "(uid=a**b)", strings.Repeat("(!", 40) + "(a=b)" + strings.Repeat(")", 40)} {
		if _, err := encodeFilter(f); err == nil {
			t.Errorf("%s: accepted", f)
		}
	}
}

func TestMessageRoundTrip(t *testing.T) {
	// A BindResponse as slapd sends it: invalidCredentials.
	msg := []byte{0x30, 0x0c, 0x02, 0x01, 0x07, 0x61, 0x07, 0x0a, 0x01, 0x31, 0x04, 0x00, 0x04, 0x00}
	r, err := parseMessage(msg)
	if err != nil || r.id != 7 || r.op != opBindResponse || r.result.code != resultInvalidCredentials {
		t.Fatalf("%+v %v", r, err)
	}
	for i := range msg {
		if _, err := parseMessage(msg[:i]); err == nil {
			t.Fatalf("truncated to %d bytes: accepted", i)
		}
	}
	for _, v := range []int64{0, 1, 127, 128, 255, 256, 65535, 1 << 30, -1, -129} {
		b := appendInt(nil, tagInteger, v)
		e, _, err := readElement(b)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := parseInt(e.body); err != nil || got != v {
			t.Fatalf("int %d: got %d %v", v, got, err)
		}
	}
}

var users = []slapdtest.User{
	{UID: "alice", Password: "alicepw", Mail: "alice@example.net"},
	{UID: "bob", Password: "bobpw", Mail: "shared@example.net"},
	{UID: "carol", Password: "carolpw", Mail: "shared@example.net"},
}

func TestAuthenticateSlapd(t *testing.T) {
	srv := slapdtest.Start(t, users...)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	simple := mustParse(t, `ldapserver=127.0.0.1 ldapport=%d ldapprefix="uid=" ldapsuffix=",`+slapdtest.PeopleDN+`"`, srv.Port)
	search := mustParse(t, `ldapurl="ldap://127.0.0.1:%d/`+slapdtest.BaseDN+`?uid?sub"`, srv.Port)
	bound := mustParse(t, `ldapserver=127.0.0.1 ldapport=%d ldapbasedn="`+slapdtest.BaseDN+`" ldapbinddn="`+slapdtest.AdminDN+`" ldapbindpasswd=`+slapdtest.AdminPW+` ldapsearchfilter="(|(uid=$username)(mail=$username))"`, srv.Port)
	badBind := mustParse(t, `ldapserver=127.0.0.1 ldapport=%d ldapbasedn="`+slapdtest.BaseDN+`" ldapbinddn="`+slapdtest.AdminDN+`" ldapbindpasswd=wrong`, srv.Port)
	for _, tc := range []struct {
		name     string
		o        *Options
		user, pw string
		want     string // "" ok, "rejected", "error"
	}{
		{"simple ok", simple, "alice", "alicepw", ""},
		{"simple wrong password", simple, "alice", "nope", "rejected"},
		{"simple unknown user", simple, "zed", "alicepw", "rejected"},
		{"simple empty password", simple, "alice", "", "rejected"},
		{"search ok", search, "bob", "bobpw", ""},
		{"search wrong password", search, "bob", "alicepw", "rejected"},
		{"search unknown", search, "zed", "x", "rejected"},
		{"search injection", search, "*", "alicepw", "rejected"},
		{"filter by mail", bound, "alice@example.net", "alicepw", ""},
		{"filter not unique", bound, "shared@example.net", "bobpw", "rejected"},
		{"bad bind dn password", badBind, "alice", "alicepw", "error"},
	} {
		err := Authenticate(ctx, tc.o, tc.user, tc.pw)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case tc.want == "rejected" && !errors.Is(err, ErrRejected):
			t.Errorf("%s: %v, want rejected", tc.name, err)
		case tc.want == "error" && (err == nil || errors.Is(err, ErrRejected)):
			t.Errorf("%s: %v, want a server error", tc.name, err)
		}
	}
	// A server that is not there is an error, not a rejection.
	gone := mustParse(t, `ldapserver=127.0.0.1 ldapport=%d ldapprefix=uid=`, freePort(t))
	if err := Authenticate(ctx, gone, "alice", "alicepw"); err == nil || errors.Is(err, ErrRejected) {
		t.Fatalf("unreachable server: %v", err)
	}
}
