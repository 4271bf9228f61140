package sqllex

import (
	"testing"
	"unicode"
)

func FuzzScan(f *testing.F) {
	seeds := []string{
		"SELECT 'a;b'; LISTEN x",
		"/* a /* b */ ; c */ SELECT 1;",
		"DO $body$ BEGIN; END $body$; SET LOCAL x = 1",
		`SELECT E'\''; SELECT '\'; x`,
		"SELECT E'a'\n'\\'; x; '",
		`SELECT U&"a;b", U&'\0061', B'01', X'1F', N'x'`,
		"CREATE OR REPLACE FUNCTION f() BEGIN ATOMIC SELECT CASE WHEN 1 THEN 2 END; END; x",
		"SELECT '\x95\x5c'; x",
		"SELECT \x81\x30\x81\x30 $\x95\x5c$ ; $\x95\x5c$",
		"SELECT $1, a$$b, 1e'x', (a; b); --",
	}
	for i, s := range seeds {
		f.Add([]byte(s), i%2 == 0, uint8(i))
	}
	f.Fuzz(func(t *testing.T, sql []byte, scs bool, enc uint8) {
		opt := Options{StandardConformingStrings: scs, Encoding: Encoding(enc % 6)}
		var all []Statement
		prevEnd := 0
		Scan(sql, opt, func(st Statement) bool {
			if st.Start < prevEnd || st.Start >= st.End || st.End > len(sql) {
				t.Fatalf("bad statement span %d:%d (previous end %d, len %d)", st.Start, st.End, prevEnd, len(sql))
			}
			if c := sql[st.Start]; c < 0x80 && unicode.IsSpace(rune(c)) {
				t.Fatalf("statement %d:%d starts with whitespace", st.Start, st.End)
			}
			last := st.Start
			for i, k := range st.Keywords {
				w := st.Words[i]
				if k == KwNone {
					if w != (Span{}) {
						t.Fatalf("word span without keyword")
					}
					for _, k2 := range st.Keywords[i:] {
						if k2 != KwNone {
							t.Fatalf("keyword after KwNone: %v", st.Keywords)
						}
					}
					break
				}
				if w.Start < last || w.Start >= w.End || w.End > st.End {
					t.Fatalf("bad word span %v in %d:%d", w, st.Start, st.End)
				}
				if got := LookupKeyword(sql[w.Start:w.End]); got != k {
					t.Fatalf("keyword %v for word %q", k, sql[w.Start:w.End])
				}
				if !ContainsWord(sql, opt, k) {
					t.Fatalf("ContainsWord(%v) = false", k)
				}
				last = w.End
			}
			prevEnd = st.End
			all = append(all, st)
			return true
		})
		// Each statement, scanned on its own, is a single statement with
		// the same keywords.
		for _, st := range all {
			sub := sql[st.Start:st.End]
			n := 0
			Scan(sub, opt, func(s2 Statement) bool {
				n++
				if s2.Start != 0 || s2.End != len(sub) || s2.Keywords != st.Keywords {
					t.Fatalf("rescan of %q: got %d:%d %v, want 0:%d %v",
						sub, s2.Start, s2.End, s2.Keywords, len(sub), st.Keywords)
				}
				return true
			})
			if n != 1 {
				t.Fatalf("rescan of %q gave %d statements", sub, n)
			}
		}
		// Stopping early stops.
		if len(all) > 1 {
			n := 0
			Scan(sql, opt, func(Statement) bool { n++; return false })
			if n != 1 {
				t.Fatalf("fn called %d times after returning false", n)
			}
		}
		ContainsWord(sql, opt, KwOther)
		ContainsIdentPrefix(sql, opt, "pg_")
	})
}
