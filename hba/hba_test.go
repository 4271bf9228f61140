package hba

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func cidr(s string) *net.IPNet {
	_, n, err := net.ParseCIDR(s)
	if err != nil {
		panic(err)
	}
	if n.IP.To4() == nil || strings.Contains(s, ":") {
		n.IP = n.IP.To16() // keep IPv4-mapped ranges as written: 16 bytes
	}
	return n
}

func TestParseValid(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Rule
	}{
		{"empty", "", nil},
		{"only comments and blanks", "# comment\n\n   \t\n  # indented comment\n", nil},
		{"local", "local all all trust\n", []Rule{
			{Line: 1, Type: Local, Databases: []string{"all"}, Users: []string{"all"}, Method: Trust},
		}},
		{"every type and method", `
local   all  all                     peer
host    db   u    10.0.0.0/8         md5
hostssl db   u    ::1/128            scram-sha-256
hostnossl db u    0.0.0.0/0          password
hostssl all  all  all                cert
host    all  all  all                reject
`, []Rule{
			{Line: 2, Type: Local, Databases: []string{"all"}, Users: []string{"all"}, Method: Peer},
			{Line: 3, Type: Host, Databases: []string{"db"}, Users: []string{"u"}, Addr: cidr("10.0.0.0/8"), Method: MD5},
			{Line: 4, Type: HostSSL, Databases: []string{"db"}, Users: []string{"u"}, Addr: cidr("::1/128"), Method: ScramSHA256},
			{Line: 5, Type: HostNoSSL, Databases: []string{"db"}, Users: []string{"u"}, Addr: cidr("0.0.0.0/0"), Method: Password},
			{Line: 6, Type: HostSSL, Databases: []string{"all"}, Users: []string{"all"}, Method: Cert},
			{Line: 7, Type: Host, Databases: []string{"all"}, Users: []string{"all"}, Method: Reject},
		}},
		{"trailing comment and tabs, no final newline", "host\tall\tall\t127.0.0.1/32\ttrust # the rest is ignored, \"even quotes",
			[]Rule{{Line: 1, Type: Host, Databases: []string{"all"}, Users: []string{"all"}, Addr: cidr("127.0.0.1/32"), Method: Trust}}},
		{"comment right after a token", "local all all trust#comment\n",
			[]Rule{{Line: 1, Type: Local, Databases: []string{"all"}, Users: []string{"all"}, Method: Trust}}},
		{"CRLF line endings", "# c\r\nlocal all all trust\r\n",
			[]Rule{{Line: 2, Type: Local, Databases: []string{"all"}, Users: []string{"all"}, Method: Trust}}},
		{"lists, with and without spaces after commas", "local db1,db2, db3 alice,\tbob md5\n",
			[]Rule{{Line: 1, Type: Local, Databases: []string{"db1", "db2", "db3"}, Users: []string{"alice", "bob"}, Method: MD5}}},
		{"sameuser", "local sameuser all md5\n",
			[]Rule{{Line: 1, Type: Local, Databases: []string{"sameuser"}, Users: []string{"all"}, Method: MD5}}},
		{"quoted names", `local "my db","a,b","x#y" "all","+g","@f","/r","say ""hi""" md5` + "\n",
			[]Rule{{Line: 1, Type: Local,
				Databases: []string{`"my db"`, `"a,b"`, `"x#y"`},
				Users:     []string{`"all"`, `"+g"`, `"@f"`, `"/r"`, `"say ""hi"""`},
				Method:    MD5}}},
		{"quoted name not needing quotes is canonicalised", `local "db" "bob" md5`,
			[]Rule{{Line: 1, Type: Local, Databases: []string{"db"}, Users: []string{"bob"}, Method: MD5}}},
		{"quotes in the middle of a token", `local ab"c d"e all md5`,
			[]Rule{{Line: 1, Type: Local, Databases: []string{`"abc de"`}, Users: []string{"all"}, Method: MD5}}},
		{"uppercase keyword is a name", `local ALL all md5`,
			[]Rule{{Line: 1, Type: Local, Databases: []string{"ALL"}, Users: []string{"all"}, Method: MD5}}},
		{"address and mask", "host all all 127.0.0.1 255.255.255.255 trust\nhost all all 10.1.2.3 255.0.0.0 trust\nhost all all fe80:: ffff:ffff:: md5\n",
			[]Rule{
				{Line: 1, Type: Host, Databases: []string{"all"}, Users: []string{"all"}, Addr: cidr("127.0.0.1/32"), Method: Trust},
				{Line: 2, Type: Host, Databases: []string{"all"}, Users: []string{"all"}, Addr: cidr("10.0.0.0/8"), Method: Trust},
				{Line: 3, Type: Host, Databases: []string{"all"}, Users: []string{"all"}, Addr: cidr("fe80::/32"), Method: MD5},
			}},
		{"host bits are cleared", "host all all 192.168.1.77/24 md5",
			[]Rule{{Line: 1, Type: Host, Databases: []string{"all"}, Users: []string{"all"}, Addr: cidr("192.168.1.0/24"), Method: MD5}}},
		{"IPv4-mapped range stays IPv6", "host all all ::ffff:10.0.0.0/104 md5",
			[]Rule{{Line: 1, Type: Host, Databases: []string{"all"}, Users: []string{"all"}, Addr: cidr("::ffff:10.0.0.0/104"), Method: MD5}}},
		{"continuation lines", "host all \\\nall 10.0.0.0/8 \\\n  md5\nlocal al\\\nl all trust\n",
			[]Rule{
				{Line: 1, Type: Host, Databases: []string{"all"}, Users: []string{"all"}, Addr: cidr("10.0.0.0/8"), Method: MD5},
				{Line: 4, Type: Local, Databases: []string{"all"}, Users: []string{"all"}, Method: Trust},
			}},
		{"continued comment swallows the next line, as in PostgreSQL", "# comment \\\nlocal all all reject\nlocal all all trust\n",
			[]Rule{{Line: 3, Type: Local, Databases: []string{"all"}, Users: []string{"all"}, Method: Trust}}},
		{"continuation at end of file", "local all all trust \\",
			[]Rule{{Line: 1, Type: Local, Databases: []string{"all"}, Users: []string{"all"}, Method: Trust}}},
		{"continuation with CRLF", "local all \\\r\nall trust\r\n",
			[]Rule{{Line: 1, Type: Local, Databases: []string{"all"}, Users: []string{"all"}, Method: Trust}}},
		{"options", `hostssl all all all cert map=certmap clientname=DN
hostssl all all 10.0.0.0/8 scram-sha-256 clientcert=verify-ca
local all all peer map="my map"
hostssl all all all md5 clientcert=verify-full,clientname=CN
`,
			[]Rule{
				{Line: 1, Type: HostSSL, Databases: []string{"all"}, Users: []string{"all"}, Method: Cert,
					Options: map[string]string{"map": "certmap", "clientname": "DN"}},
				{Line: 2, Type: HostSSL, Databases: []string{"all"}, Users: []string{"all"}, Addr: cidr("10.0.0.0/8"), Method: ScramSHA256,
					Options: map[string]string{"clientcert": "verify-ca"}},
				{Line: 3, Type: Local, Databases: []string{"all"}, Users: []string{"all"}, Method: Peer,
					Options: map[string]string{"map": "my map"}},
				{Line: 4, Type: HostSSL, Databases: []string{"all"}, Users: []string{"all"}, Method: MD5,
					Options: map[string]string{"clientcert": "verify-full", "clientname": "CN"}},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := Parse(strings.NewReader(tt.in), "pg_hba.conf")
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if f.Path != "pg_hba.conf" {
				t.Errorf("Path = %q", f.Path)
			}
			if !reflect.DeepEqual(f.Rules, tt.want) {
				t.Errorf("rules:\n got %#v\nwant %#v", f.Rules, tt.want)
			}
			checkRoundTrip(t, f)
		})
	}
}

// checkRoundTrip formats f and parses it back, expecting the same rules.
func checkRoundTrip(t *testing.T, f *File) {
	t.Helper()
	text := f.String()
	g, err := Parse(strings.NewReader(text), "formatted")
	if err != nil {
		t.Fatalf("parsing formatted file:\n%s\nerror: %v", text, err)
	}
	if len(g.Rules) != len(f.Rules) {
		t.Fatalf("formatted file:\n%s\nhas %d rules, want %d", text, len(g.Rules), len(f.Rules))
	}
	for i := range f.Rules {
		a, b := f.Rules[i], g.Rules[i]
		a.Line, b.Line = 0, 0
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("rule %d changed by formatting as %q:\n got %#v\nwant %#v", i, f.Rules[i].String(), b, a)
		}
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []string // one per invalid line, each "f:line: <substring of message>"
	}{
		{"unknown type", "hots all all all md5", []string{`f:1: invalid connection type "hots"`}},
		{"type is case-sensitive", "HOST all all all md5", []string{`f:1: invalid connection type "HOST" (keywords are case-sensitive: write "host")`}},
		{"gssenc type", "hostgssenc all all all md5", []string{`f:1: connection type "hostgssenc" is not supported by mux`}},
		{"type list", "host,local all all all md5", []string{`f:1: multiple values specified for connection type`}},
		{"missing database", "local", []string{`f:1: end-of-line before database specification`}},
		{"missing user", "local all # comment", []string{`f:1: end-of-line before role specification`}},
		{"missing address", "host all all", []string{`f:1: end-of-line before IP address specification`}},
		{"missing method local", "local all all", []string{`f:1: end-of-line before authentication method`}},
		{"missing method host", "host all all 10.0.0.0/8", []string{`f:1: end-of-line before authentication method`}},
		{"missing mask", "host all all 10.0.0.1", []string{`f:1: end-of-line before netmask specification`}},
		{"address without mask", "host all all 10.0.0.1 md5", []string{`f:1: invalid IP mask "md5" after address "10.0.0.1" (write "10.0.0.1/32"`}},
		{"mask family", "host all all 10.0.0.1 ffff:: md5", []string{`f:1: IP address "10.0.0.1" and mask "ffff::" do not match`}},
		{"non-contiguous mask", "host all all 10.0.0.1 255.0.255.0 md5", []string{`f:1: invalid IP mask "255.0.255.0": the mask bits must be contiguous`}},
		{"bad CIDR address", "host all all 10.0.0.300/8 md5", []string{`f:1: invalid CIDR address "10.0.0.300/8"`}},
		{"bad CIDR length", "host all all 10.0.0.0/33 md5", []string{`f:1: invalid CIDR mask in address "10.0.0.0/33"`}},
		{"empty CIDR length", "host all all ::1/ md5", []string{`f:1: invalid CIDR mask in address "::1/"`}},
		{"bad IPv4", "host all all 10.0.0.300 255.0.0.0 md5", []string{`f:1: invalid IP address "10.0.0.300"`}},
		{"bad IPv6", "host all all 1:2:3 md5", []string{`f:1: invalid IP address "1:2:3"`}},
		{"zone", "host all all fe80::1%eth0/64 md5", []string{`f:1: invalid IP address "fe80::1%eth0/64": zones are not supported`}},
		{"host name", "host all all db.example.com md5", []string{`f:1: host names are not supported by mux ("db.example.com")`}},
		{"host name suffix", "host all all .example.com md5", []string{`f:1: host names are not supported by mux`}},
		{"quoted all address is a host name", `host all all "all" md5`, []string{`f:1: host names are not supported by mux ("all")`}},
		{"samehost", "host all all samehost md5", []string{`f:1: address keyword "samehost" is not supported by mux`}},
		{"samenet", "host all all samenet md5", []string{`f:1: address keyword "samenet" is not supported by mux`}},
		{"address list", "host all all 10.0.0.0/8,::1/128 md5", []string{`f:1: multiple values specified for host address`}},
		{"unknown method", "local all all foo", []string{`f:1: invalid authentication method "foo"`}},
		{"method is case-sensitive", "local all all MD5", []string{`f:1: invalid authentication method "MD5" (keywords are case-sensitive: write "md5")`}},
		{"unsupported method", "host all all all pam", []string{`f:1: authentication method "pam" is not supported by mux`}},
		{"ldap without options", "host all all all ldap", []string{`f:1: LDAP authentication requires "ldapbasedn", "ldapprefix", or "ldapsuffix" to be set`}},
		{"ldap mixed modes", "host all all all ldap ldapserver=h ldapprefix=cn= ldapbasedn=dc=x", []string{`f:1: cannot mix options for simple bind and search+bind modes`}},
		{"ldap option on md5", "host all all all md5 ldapserver=x", []string{`f:1: authentication option "ldapserver" is only valid for authentication method ldap`}},
		{"method list", "local all all md5,trust", []string{`f:1: multiple values specified for authentication method`}},
		{"peer on host", "host all all all peer", []string{`f:1: authentication method "peer" is only supported on local connections`}},
		{"cert on host", "host all all all cert", []string{`f:1: authentication method "cert" is only supported on hostssl connections`}},
		{"cert on local", "local all all cert", []string{`f:1: authentication method "cert" is only supported on hostssl connections`}},
		{"option without =", "local all all peer mymap", []string{`f:1: authentication option not in name=value format: "mymap"`}},
		{"option without name", "local all all peer =x", []string{`f:1: authentication option without a name: "=x"`}},
		{"option without value", "local all all peer map=", []string{`f:1: authentication option "map" has an empty value`}},
		{"unknown option", "host all all all md5 ldapfoo=x", []string{`f:1: unrecognized authentication option name: "ldapfoo"`}},
		{"option name is case-sensitive", "local all all peer MAP=x", []string{`f:1: unrecognized authentication option name: "MAP"`}},
		{"duplicate option", "local all all peer map=a map=b", []string{`f:1: authentication option "map" specified more than once`}},
		{"map with md5", "local all all md5 map=x", []string{`f:1: authentication option "map" is only valid for authentication methods peer and cert`}},
		{"clientcert on host", "host all all all md5 clientcert=verify-full", []string{`f:1: authentication option "clientcert" can only be configured for "hostssl" rows`}},
		{"clientcert value", "hostssl all all all md5 clientcert=1", []string{`f:1: invalid value for clientcert: "1"`}},
		{"clientcert verify-ca with cert", "hostssl all all all cert clientcert=verify-ca", []string{`f:1: clientcert only accepts "verify-full" when using "cert" authentication`}},
		{"clientname on local", "local all all peer clientname=CN", []string{`f:1: authentication option "clientname" can only be configured for "hostssl" rows`}},
		{"clientname value", "hostssl all all all cert clientname=cn", []string{`f:1: invalid value for clientname: "cn"`}},
		{"samerole", "local samerole all md5", []string{`f:1: database keyword "samerole" is not supported by mux`}},
		{"samegroup", "local samegroup all md5", []string{`f:1: database keyword "samegroup" is not supported by mux`}},
		{"database file", "local @dbs all md5", []string{`f:1: including database names from a file ("@dbs") is not supported by mux`}},
		{"database regexp", "local /^db all md5", []string{`f:1: regular expressions in database names ("/^db") are not supported by mux`}},
		{"group", "local all +admins md5", []string{`f:1: group membership ("+admins") is not supported by mux`}},
		{"user file", "local all @users md5", []string{`f:1: including role names from a file ("@users") is not supported by mux`}},
		{"user regexp", "local all /^u md5", []string{`f:1: regular expressions in role names ("/^u") are not supported by mux`}},
		{"empty quoted database", `local "" all md5`, []string{`f:1: empty database name`}},
		{"empty quoted user", `local all "" md5`, []string{`f:1: empty role name`}},
		{"unterminated quote", `local "db all md5`, []string{`f:1: unterminated quoted string`}},
		{"trailing comma", "local all all, md5", nil}, // list continues over whitespace: user list is all,md5; no method
		{"comma at end of line", "local all all md5,", []string{`f:1: list ends with a comma`}},
		{"comma before comment", "local a, # x", []string{`f:1: list ends with a comma`}},
		{"empty list element", "local a,,b all md5", []string{`f:1: empty element in a comma-separated list`}},
		{"space before comma", "local a ,b all md5", []string{`f:1: unexpected "," at the start of a field`}},
		{"every error with its line", `# a comment
local all all trust
host all all
local all all peer

hostssl all all 10.0.0.0/8 cert
host all all 10.0.0.0/8 cert
local all all \
   bogus
local all all md5
  LOCAL all all md5
`, []string{
			`f:3: end-of-line before IP address specification`,
			`f:7: authentication method "cert" is only supported on hostssl connections`,
			`f:8: invalid authentication method "bogus"`,
			`f:11: invalid connection type "LOCAL"`,
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.want == nil {
				tt.want = []string{`f:1: end-of-line before authentication method`}
			}
			f, err := Parse(strings.NewReader(tt.in), "f")
			if err == nil {
				t.Fatalf("Parse succeeded with %d rules, want errors %q", len(f.Rules), tt.want)
			}
			if f != nil {
				t.Errorf("Parse returned a File along with an error")
			}
			var got []string
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				var pe *ParseError
				if !errors.As(e, &pe) {
					t.Errorf("error %v is not a *ParseError", e)
				}
				got = append(got, e.Error())
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d errors, want %d:\n%s", len(got), len(tt.want), err)
			}
			for i := range got {
				if !strings.HasPrefix(got[i], tt.want[i]) {
					t.Errorf("error %d:\n got %s\nwant %s...", i, got[i], tt.want[i])
				}
			}
			if err.Error() != strings.Join(got, "\n") {
				t.Errorf("joined error = %q", err.Error())
			}
		})
	}
}

func TestParseErrorFields(t *testing.T) {
	_, err := Parse(strings.NewReader("\n\nlocal all all nope\n"), "conf/hba")
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *ParseError", err)
	}
	if pe.File != "conf/hba" || pe.Line != 3 || pe.Msg != `invalid authentication method "nope"` {
		t.Errorf("ParseError = %+v", *pe)
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestParseReadError(t *testing.T) {
	_, err := Parse(errReader{}, "x")
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("err = %v", err)
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "pg_hba.conf")
	if err := os.WriteFile(path, []byte("local all all peer\nhost all all ::1/128 scram-sha-256\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if f.Path != path || len(f.Rules) != 2 || f.Rules[1].Line != 2 {
		t.Errorf("Load = %+v", f)
	}

	if err := os.WriteFile(path, []byte("local all all peer\nhost all all ::1/128 md55\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.HasPrefix(err.Error(), path+":2: ") {
		t.Errorf("Load of a bad file: err = %v", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load of a missing file: err = %v", err)
	}
}

func TestRuleString(t *testing.T) {
	for in, want := range map[string]string{
		"local  all,sameuser  all   peer   map=m":                   "local all,sameuser all peer map=m",
		`host "all","a b" "x""y" 127.0.0.1 255.255.255.255 md5`:     `host "all","a b" "x""y" 127.0.0.1/32 md5`,
		"hostssl all all all cert clientname=CN map=\"m m\"":        `hostssl all all all cert clientname=CN map="m m"`,
		"hostnossl db u ::ffff:10.1.0.0/112 password":               "hostnossl db u ::ffff:10.1.0.0/112 password",
		`local "trailing\" all trust`:                               `local "trailing\" all trust`,
		`hostssl all all 2001:db8::/32 trust clientcert=verify-ca `: `hostssl all all 2001:db8::/32 trust clientcert=verify-ca`,
	} {
		f, err := Parse(strings.NewReader(in), "t")
		if err != nil {
			t.Fatalf("%s: %v", in, err)
		}
		if got := f.Rules[0].String(); got != want {
			t.Errorf("String(%s)\n got %s\nwant %s", in, got, want)
		}
		checkRoundTrip(t, f)
	}
	if s := ConnType(0).String(); s != "ConnType(0)" {
		t.Errorf("ConnType(0).String() = %q", s)
	}
}
