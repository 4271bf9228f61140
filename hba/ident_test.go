package hba

import (
	"strings"
	"testing"
)

func TestIdentAllows(t *testing.T) {
	id, err := ParseIdent(strings.NewReader(`# MAPNAME SYSTEM PG
certs  alice        bob     # alice may be bob
certs  alice        alice
certs  "/^(.*)@example\.com$"  \1
certs  /^ops-        all
"my map" "carol x"  "all"
peers  root         /^app_[0-9]+$
peers  "/^u(\d)$"   "n\1x"
opt    "/^a|(b)$"   \1
opt    /^a          all
`), "pg_ident.conf")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		m, system, user string
		line            int // 0: refused
	}{
		{"certs", "alice", "bob", 2},
		{"certs", "alice", "alice", 3},
		{"certs", "alice", "carol", 0},
		{"certs", "bob", "alice", 0},
		{"certs", "dave@example.com", "dave", 4},
		{"certs", "dave@example.com", "eve", 0},
		{"certs", "dave@example.org", "dave", 0},
		{"certs", "ops-1", "anyone", 5},
		{"certs", "xops-1", "anyone", 0},
		{"my map", "carol x", "all", 6}, // quoted all is the user called all
		{"my map", "carol x", "bob", 0},
		{"peers", "root", "app_12", 7},
		{"peers", "root", "app_x", 0},
		{"peers", "u7", "n7x", 8},
		{"peers", "u7", "n8x", 0},
		{"nomap", "alice", "bob", 0},
		{"opt", "b", "b", 9},
		{"opt", "a", "x", 0}, // \1 of a group not in the match: no match, and no later line
		{"opt", "c", "c", 0},
	} {
		l := id.Allows(c.m, c.system, c.user)
		got := 0
		if l != nil {
			got = l.Line
		}
		if got != c.line {
			t.Errorf("Allows(%q, %q, %q) = line %d, want %d", c.m, c.system, c.user, got, c.line)
		}
	}
	if !id.Has("my map") || id.Has("nomap") {
		t.Error("Has")
	}
	var none *Ident
	if none.Allows("certs", "alice", "alice") != nil || none.Has("certs") {
		t.Error("nil Ident allows")
	}
}

func TestIdentErrors(t *testing.T) {
	for _, c := range []struct{ in, want string }{
		{"m a\n", "missing entry"},
		{"m a b c\n", "extra field"},
		{"m a,b c\n", "multiple values"},
		{"m \"\" c\n", "empty field"},
		{"m a +admins\n", "group membership"},
		{"m /( c\n", "invalid regular expression"},
		{"m a /( \n", "invalid regular expression"},
		{"m a \\1\n", `\1 needs SYSTEM-USERNAME to be a regular expression`},
		{"m /^x$ \\1\n", "has no subexpressions"},
		{"include other.conf\n", `"include" lines are not supported`},
		{"m \"a c\n", "unterminated quoted string"},
	} {
		_, err := ParseIdent(strings.NewReader("ok a b\n"+c.in), "id.conf")
		if err == nil || !strings.Contains(err.Error(), "id.conf:2: ") || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%q: %v, want id.conf:2: ...%s", c.in, err, c.want)
		}
	}
	// A map called include is a map like any other, as in PostgreSQL.
	if _, err := ParseIdent(strings.NewReader("include a b\n"), "id.conf"); err != nil {
		t.Error(err)
	}
}

// FuzzParseIdent checks that ParseIdent never panics, that every error
// names the file and a line, and that formatting a parsed file and parsing
// it again gives mappings that allow the same logins.
func FuzzParseIdent(f *testing.F) {
	for _, s := range []string{
		"",
		"m alice bob\n",
		"# c\nm \"/^(.*)@x$\" \\1 # c\r\n",
		"m /^a all\n\"m 2\" \"a,b\" \"all\"\n",
		"m root /^app_\\d+$\\\n\n",
		"m a +g\ninclude f\nm /( x\n",
		"m /^(a)|(b)$ x\\1y\n",
	} {
		f.Add(s)
	}
	logins := [][3]string{{"m", "alice", "bob"}, {"m", "a@x", "a"}, {"m", "root", "app_1"}, {"m 2", "a,b", "all"}, {"m", "b", "xy"}}
	f.Fuzz(func(t *testing.T, in string) {
		id, err := ParseIdent(strings.NewReader(in), "fz")
		if err != nil {
			if id != nil {
				t.Fatal("Ident returned with an error")
			}
			errs, ok := err.(interface{ Unwrap() []error })
			if !ok {
				t.Fatalf("error %v is not a list of line errors", err)
			}
			for _, e := range errs.Unwrap() {
				pe, ok := e.(*ParseError)
				if !ok || pe.File != "fz" || pe.Line < 1 || pe.Line > strings.Count(in, "\n")+1 {
					t.Fatalf("bad error %#v", e)
				}
			}
			return
		}
		text := id.String()
		again, err := ParseIdent(strings.NewReader(text), "fz2")
		if err != nil {
			t.Fatalf("formatted file does not parse:\n%s\n%v", text, err)
		}
		if len(again.Lines) != len(id.Lines) {
			t.Fatalf("formatted file has %d lines, want %d:\n%s", len(again.Lines), len(id.Lines), text)
		}
		for i := range id.Lines {
			a, b := id.Lines[i], again.Lines[i]
			if a.Map != b.Map || a.System != b.System || a.User != b.User || a.UserAll != b.UserAll {
				t.Fatalf("line %d changed by formatting as %q:\n got %+v\nwant %+v", i, text, b, a)
			}
		}
		for _, l := range logins {
			if (id.Allows(l[0], l[1], l[2]) == nil) != (again.Allows(l[0], l[1], l[2]) == nil) {
				t.Fatalf("%q allows %v differently after formatting", in, l)
			}
		}
	})
}
