package ldap

import (
	"bufio"
	"bytes"
	"testing"
)

// FuzzParseMessage feeds the response reader and parser untrusted bytes:
// they must never panic nor read past what they were given.
func FuzzParseMessage(f *testing.F) {
	f.Add([]byte{0x30, 0x0c, 0x02, 0x01, 0x07, 0x61, 0x07, 0x0a, 0x01, 0x31, 0x04, 0x00, 0x04, 0x00})
	f.Add([]byte{0x30, 0x16, 0x02, 0x01, 0x02, 0x64, 0x11, 0x04, 0x0f, 'u', 'i', 'd', '=', 'a', ',', 'd', 'c', '=', 'n', 'e', 't', 0x30, 0x00, 0x00})
	f.Add(envelope(5, appendTLV(nil, opSearchResultDone, []byte{0x0a, 0x01, 0x00, 0x04, 0x00, 0x04, 0x00})))
	f.Add([]byte{0x30, 0x84, 0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := parseMessage(b)
		if err == nil && r.op == opSearchResultEntry && len(r.dn) > len(b) {
			t.Fatalf("dn longer than the input")
		}
		msg, err := readMessage(bufio.NewReader(bytes.NewReader(b)))
		if err == nil && len(msg) > len(b) {
			t.Fatalf("read %d bytes from %d", len(msg), len(b))
		}
	})
}

// FuzzFilter checks the filter parser on any input.
func FuzzFilter(f *testing.F) {
	f.Add("(&(objectClass=person)(|(uid=a*)(mail=*@x)))")
	f.Add(`(cn=a\2ab)`)
	f.Fuzz(func(t *testing.T, s string) {
		b, err := encodeFilter(s)
		if err != nil {
			return
		}
		if _, rest, err := readElement(b); err != nil || len(rest) != 0 {
			t.Fatalf("%q encoded to an invalid element: % x (%v)", s, b, err)
		}
	})
}

// FuzzParseOptions checks the auth_ldap_options parser on any input: an
// accepted string gives options that validate again.
func FuzzParseOptions(f *testing.F) {
	f.Add(`ldapurl="ldap://127.0.0.1:12345/dc=example,dc=net?uid?sub"`)
	f.Add(`ldapserver=h ldapprefix="cn=" ldapsuffix=",dc=example,dc=net"`)
	f.Add(`ldapserver="a b",ldapbasedn=dc=x ldapsearchfilter="(|(uid=$username)(mail=$username))"`)
	f.Fuzz(func(t *testing.T, s string) {
		o, err := ParseOptions(s)
		if err != nil {
			return
		}
		if err := o.validate(); err != nil {
			t.Fatalf("%q: accepted, then %v", s, err)
		}
	})
}
