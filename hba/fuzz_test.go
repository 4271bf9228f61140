package hba

import (
	"net"
	"reflect"
	"strings"
	"testing"
)

// FuzzParse checks that Parse never panics, that every error names the file
// and a line, and that formatting a parsed file and parsing it again gives
// the same rules. Each parsed file is also matched against a few connections.
func FuzzParse(f *testing.F) {
	for _, s := range []string{
		"",
		"local all all trust\n",
		"# c\nhost all all 127.0.0.1/32 md5 # c\n",
		"host all all 127.0.0.1 255.255.255.255 trust\r\n",
		"hostssl all all ::1/128 cert map=m clientname=CN\n",
		"hostnossl db1,db2, \"x y\" a,\"b\"\"c\" ::ffff:10.0.0.0/104 scram-sha-256\n",
		"local sameuser all peer\nlocal al\\\nl all reject\\\n",
		"host all all 10.0.0.0/8 md5 clientcert=verify-full\n",
		"host \"all\" +g,@f /r samehost ldap\n",
		"local \"unterminated all md5\n",
		"host a ,b c 1.2.3.4 ffff:: md5\n",
	} {
		f.Add(s)
	}
	conns := []Conn{
		{Local: true, Database: "all", User: "all"},
		{Addr: net.ParseIP("10.0.0.1"), Database: "db1", User: "a"},
		{TLS: true, Addr: net.ParseIP("::1"), Database: "x y", User: `b"c`},
		{Addr: net.ParseIP("::ffff:127.0.0.1"), Database: "d", User: "d"},
	}
	f.Fuzz(func(t *testing.T, in string) {
		file, err := Parse(strings.NewReader(in), "fz")
		if err != nil {
			if file != nil {
				t.Fatal("File returned with an error")
			}
			for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
				pe, ok := e.(*ParseError)
				if !ok || pe.File != "fz" || pe.Line < 1 || pe.Line > strings.Count(in, "\n")+1 {
					t.Fatalf("bad error %#v", e)
				}
			}
			return
		}
		for _, c := range conns {
			file.Match(c)
		}
		text := file.String()
		again, err := Parse(strings.NewReader(text), "fz2")
		if err != nil {
			t.Fatalf("formatted file does not parse:\n%s\n%v", text, err)
		}
		if len(again.Rules) != len(file.Rules) {
			t.Fatalf("formatted file has %d rules, want %d:\n%s", len(again.Rules), len(file.Rules), text)
		}
		for i := range file.Rules {
			a, b := file.Rules[i], again.Rules[i]
			if b.Line != i+1 {
				t.Fatalf("formatted rule %d on line %d", i, b.Line)
			}
			a.Line, b.Line = 0, 0
			if !reflect.DeepEqual(a, b) {
				t.Fatalf("rule %d changed by formatting as %q:\n got %#v\nwant %#v", i, text, b, a)
			}
			for _, c := range conns {
				if a.matches(c) != b.matches(c) {
					t.Fatalf("rule %d matches %+v differently after formatting", i, c)
				}
			}
		}
	})
}
