package hba

import (
	"net"
	"strings"
	"testing"
)

func mustParse(t *testing.T, s string) *File {
	t.Helper()
	f, err := Parse(strings.NewReader(s), "t")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func TestMatch(t *testing.T) {
	f := mustParse(t, `
local   all        postgres                     peer                # 2
local   sameuser   all                          md5                 # 3
local   all        all                          reject              # 4
hostssl secure     all       all                cert map=m          # 5
hostnossl secure   all       all                reject              # 6
host    "my db","all"  "bob smith"  10.0.0.0/8  scram-sha-256       # 7
host    app        alice,bob 10.1.0.0/16        md5                 # 8
host    app        all       10.0.0.0/8         reject              # 9
host    all        all       ::1/128            trust               # 10
host    all        all       2001:db8::/32      scram-sha-256       # 11
hostssl all        all       192.168.0.0 255.255.0.0 password       # 12
host    v6only     all       ::/0               trust               # 13
host    mapped     all       ::ffff:172.16.0.0/108 trust            # 14
host    all        all       0.0.0.0/0          md5                 # 15
`)
	ip := net.ParseIP
	tests := []struct {
		name string
		c    Conn
		line int // 0: no rule
	}{
		{"local superuser", Conn{Local: true, Database: "x", User: "postgres"}, 2},
		{"local sameuser", Conn{Local: true, Database: "carol", User: "carol"}, 3},
		{"local other", Conn{Local: true, Database: "carol", User: "dave"}, 4},
		{"local ignores TLS and Addr", Conn{Local: true, TLS: true, Addr: ip("10.1.1.1"), Database: "app", User: "alice"}, 4},
		{"hostssl only with TLS", Conn{TLS: true, Addr: ip("8.8.8.8"), Database: "secure", User: "u"}, 5},
		{"hostnossl only without TLS", Conn{Addr: ip("8.8.8.8"), Database: "secure", User: "u"}, 6},
		{"quoted names", Conn{Addr: ip("10.9.9.9"), Database: "my db", User: "bob smith"}, 7},
		{"quoted all is a name", Conn{Addr: ip("10.9.9.9"), Database: "all", User: "bob smith"}, 7},
		{"quoted all is not the keyword", Conn{Addr: ip("10.9.9.9"), Database: "other", User: "bob smith"}, 15},
		{"first match wins", Conn{Addr: ip("10.1.2.3"), Database: "app", User: "bob"}, 8},
		{"later rule when first does not match user", Conn{Addr: ip("10.1.2.3"), Database: "app", User: "eve"}, 9},
		{"later rule when first does not match address", Conn{Addr: ip("10.2.0.1"), Database: "app", User: "bob"}, 9},
		{"names are case-sensitive", Conn{Addr: ip("10.1.2.3"), Database: "App", User: "bob"}, 15},
		{"IPv6 loopback", Conn{Addr: ip("::1"), Database: "app", User: "x"}, 10},
		{"IPv6 range", Conn{Addr: ip("2001:db8:1::5"), Database: "app", User: "x"}, 11},
		{"IPv6 outside ranges", Conn{Addr: ip("2001:db9::1"), Database: "app", User: "x"}, 0},
		{"IPv6 ::/0", Conn{Addr: ip("fe80::1"), Database: "v6only", User: "x"}, 13},
		{"IPv4 does not match ::/0", Conn{Addr: ip("8.8.8.8"), Database: "v6only", User: "x"}, 15},
		{"IPv4-mapped client matches IPv4 rule", Conn{Addr: ip("::ffff:10.1.2.3"), Database: "app", User: "alice"}, 8},
		{"4-byte client matches IPv4 rule", Conn{Addr: net.IP{10, 1, 2, 3}, Database: "app", User: "alice"}, 8},
		{"IPv4 client matches IPv4-mapped rule", Conn{Addr: ip("172.16.5.5"), Database: "mapped", User: "x"}, 14},
		{"IPv4 client outside IPv4-mapped rule", Conn{Addr: ip("172.32.0.1"), Database: "mapped", User: "x"}, 15},
		{"address and mask, TLS", Conn{TLS: true, Addr: ip("192.168.7.7"), Database: "d", User: "u"}, 12},
		{"address and mask, no TLS falls through", Conn{Addr: ip("192.168.7.7"), Database: "d", User: "u"}, 15},
		{"host matches TLS too", Conn{TLS: true, Addr: ip("::1"), Database: "d", User: "u"}, 10},
		{"TCP without address matches only address all", Conn{TLS: true, Database: "secure", User: "u"}, 5},
		{"TCP without address, no rule", Conn{Database: "d", User: "u"}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := f.Match(tt.c)
			switch {
			case r == nil && tt.line != 0:
				t.Errorf("no match, want line %d", tt.line)
			case r != nil && r.Line != tt.line:
				t.Errorf("matched line %d (%s), want %d", r.Line, r, tt.line)
			}
			if r != nil && r != &f.Rules[slicesIndex(f, r)] {
				t.Errorf("Match returned a copy, not a pointer into Rules")
			}
		})
	}
}

func slicesIndex(f *File, r *Rule) int {
	for i := range f.Rules {
		if &f.Rules[i] == r {
			return i
		}
	}
	return 0
}

func TestMatchEmpty(t *testing.T) {
	var nilFile *File
	if r := nilFile.Match(Conn{Local: true}); r != nil {
		t.Errorf("nil File matched %v", r)
	}
	if r := mustParse(t, "# nothing\n").Match(Conn{Local: true, Database: "d", User: "u"}); r != nil {
		t.Errorf("empty File matched %v", r)
	}
	if r := mustParse(t, "host all all all trust").Match(Conn{Local: true, Database: "d", User: "u"}); r != nil {
		t.Errorf("host rule matched a local connection")
	}
}

// Rules built by hand (not by Parse) match the same way.
func TestMatchHandBuilt(t *testing.T) {
	_, v4, _ := net.ParseCIDR("10.0.0.0/8")
	f := &File{Rules: []Rule{
		{Type: HostSSL, Databases: []string{`"a""b"`}, Users: []string{"all"}, Addr: v4, Method: MD5},
		{Type: Host, Databases: []string{"d"}, Users: []string{"u"}, Addr: &net.IPNet{IP: net.ParseIP("10.0.0.0"), Mask: net.CIDRMask(8, 32)}, Method: Trust},
		{Type: ConnType(0), Databases: []string{"all"}, Users: []string{"all"}, Method: Trust},
		{Type: Host, Databases: []string{"all"}, Users: []string{"all"}, Addr: &net.IPNet{IP: net.IP{1}, Mask: net.IPMask{1, 2, 3}}, Method: Trust},
	}}
	if r := f.Match(Conn{TLS: true, Addr: net.ParseIP("10.1.1.1"), Database: `a"b`, User: "x"}); r != &f.Rules[0] {
		t.Errorf("quoted hand-built entry: got %v", r)
	}
	if r := f.Match(Conn{Addr: net.ParseIP("10.1.1.1"), Database: "d", User: "u"}); r != &f.Rules[1] {
		t.Errorf("16-byte IP with 4-byte mask: got %v", r)
	}
	if r := f.Match(Conn{Addr: net.ParseIP("11.1.1.1"), Database: "d", User: "u"}); r != nil {
		t.Errorf("invalid type or malformed range matched: %v", r)
	}
}

func BenchmarkMatch(b *testing.B) {
	var sb strings.Builder
	for i := 0; i < 50; i++ {
		sb.WriteString("host app" + string(rune('a'+i%26)) + " alice,bob 10.0.0.0/8 md5\n")
	}
	sb.WriteString("host all all 0.0.0.0/0 scram-sha-256\n")
	f, err := Parse(strings.NewReader(sb.String()), "b")
	if err != nil {
		b.Fatal(err)
	}
	c := Conn{Addr: net.ParseIP("192.168.1.1"), Database: "app", User: "carol"}
	b.ReportAllocs()
	for b.Loop() {
		if f.Match(c) == nil {
			b.Fatal("no match")
		}
	}
}

// TestMatchReplication: the "replication" keyword matches physical
// replication connections and nothing else; "all" and database names do
// not match them; a logical one matches by its database, as in Postgres.
func TestMatchReplication(t *testing.T) {
	f := mustParse(t, `
host    all          repl     127.0.0.1/32  md5             # 2
host    replication  repl     127.0.0.1/32  scram-sha-256   # 3
host    replication  all      127.0.0.1/32  reject          # 4
host    "replication" all     127.0.0.1/32  trust           # 5
host    app,replication all   10.0.0.0/8    password        # 6
`)
	if got := f.Rules[1].Databases; len(got) != 1 || got[0] != "replication" {
		t.Fatalf("databases of line 3 = %q, want the keyword", got)
	}
	ip := net.ParseIP("127.0.0.1")
	tests := []struct {
		name string
		c    Conn
		line int
	}{
		{"all does not match physical, the keyword does", Conn{Addr: ip, Database: "replication", User: "repl", Replication: true}, 3},
		{"physical of another user", Conn{Addr: ip, Database: "replication", User: "bob", Replication: true}, 4},
		{"physical ignores its database name", Conn{Addr: ip, Database: "app", User: "repl", Replication: true}, 3},
		{"keyword in a list", Conn{Addr: net.ParseIP("10.1.1.1"), Database: "x", User: "bob", Replication: true}, 6},
		{"nothing for physical elsewhere", Conn{Addr: net.ParseIP("192.168.1.1"), Database: "replication", User: "repl", Replication: true}, 0},
		{"ordinary (and logical) by database", Conn{Addr: ip, Database: "app", User: "repl"}, 2},
		{"keyword does not match an ordinary connection", Conn{Addr: ip, Database: "replication", User: "bob"}, 5},
		{"list with the keyword matches by name otherwise", Conn{Addr: net.ParseIP("10.1.1.1"), Database: "app", User: "bob"}, 6},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := 0
			if r := f.Match(tt.c); r != nil {
				got = r.Line
			}
			if got != tt.line {
				t.Errorf("Match = line %d, want %d", got, tt.line)
			}
		})
	}
}
