package sqllex

import (
	"fmt"
	"math/rand"
	"strings"
	"testing"
)

var (
	scsOn  = Options{StandardConformingStrings: true}
	scsOff = Options{StandardConformingStrings: false}
)

// stmts renders the statements of sql as "text|KW1 KW2 KW3" strings.
func stmts(sql string, opt Options) []string {
	var out []string
	Scan([]byte(sql), opt, func(st Statement) bool {
		var kws []string
		for _, k := range st.Keywords {
			if k != KwNone {
				kws = append(kws, k.String())
			}
		}
		out = append(out, sql[st.Start:st.End]+"|"+strings.Join(kws, " "))
		return true
	})
	return out
}

func TestScan(t *testing.T) {
	sjis := Options{StandardConformingStrings: true, Encoding: EncodingSJIS}
	sjisOff := Options{StandardConformingStrings: false, Encoding: EncodingSJIS}
	tests := []struct {
		name string
		sql  string
		opt  Options
		want []string
	}{
		{"empty", "", scsOn, nil},
		{"only semicolons", ";; ;\n;", scsOn, nil},
		{"only comments", "  -- x ; y\n ; /* ; */ ;", scsOn, nil},
		{"single", "SELECT 1", scsOn, []string{"SELECT 1|SELECT"}},
		{"trailing semicolon", "LISTEN x;", scsOn, []string{"LISTEN x|LISTEN ?"}},
		{"trimmed", "  /*c*/ SELECT 1 /*d*/ ;\n x -- y", scsOn, []string{"SELECT 1|SELECT", "x|?"}},
		{"string with semicolon", "SELECT 'a;b'; LISTEN x", scsOn,
			[]string{"SELECT 'a;b'|SELECT", "LISTEN x|LISTEN ?"}},
		{"doubled quote", "SELECT 'it''s;'; LISTEN x", scsOn,
			[]string{"SELECT 'it''s;'|SELECT", "LISTEN x|LISTEN ?"}},
		{"multiple", "BEGIN; SET LOCAL a = 1;COMMIT", scsOn,
			[]string{"BEGIN|BEGIN", "SET LOCAL a = 1|SET LOCAL ?", "COMMIT|COMMIT"}},
		{"empty statements between", "select 1;;  ; select 2;", scsOn,
			[]string{"select 1|SELECT", "select 2|SELECT"}},
		{"case insensitive", "set Session AUTHORIZATION x; Listen y; disCARD all", scsOn,
			[]string{"set Session AUTHORIZATION x|SET SESSION AUTHORIZATION", "Listen y|LISTEN ?", "disCARD all|DISCARD ALL"}},
		{"three keywords only", "START TRANSACTION ISOLATION LEVEL", scsOn,
			[]string{"START TRANSACTION ISOLATION LEVEL|START TRANSACTION ISOLATION"}},
		{"quoted identifier stops keywords", `SET "search_path" TO x`, scsOn,
			[]string{`SET "search_path" TO x|SET`}},
		{"operator stops keywords", "SET a=b", scsOn, []string{"SET a=b|SET ?"}},
		{"leading paren", "(SELECT 1)", scsOn, []string{"(SELECT 1)|"}},
		{"leading quoted identifier", `"select" x`, scsOn, []string{`"select" x|`}},
		{"identifier with non-ASCII", "SELECT caf\xc3\xa9; x", scsOn, []string{"SELECT caf\xc3\xa9|SELECT ?", "x|?"}},
		{"keyword prefix is not keyword", "LISTENER; SETS", scsOn, []string{"LISTENER|?", "SETS|?"}},
		{"digits in word", "set1 x; _set", scsOn, []string{"set1 x|? ?", "_set|?"}},

		{"line comment", "SELECT 1 -- ; LISTEN x\n; NOTIFY y", scsOn,
			[]string{"SELECT 1|SELECT", "NOTIFY y|NOTIFY ?"}},
		{"line comment CR", "SELECT 1 -- ; x\r; NOTIFY y", scsOn,
			[]string{"SELECT 1|SELECT", "NOTIFY y|NOTIFY ?"}},
		{"dash dash inside operator", "SELECT 1+--2; x\n+ 3; y", scsOn,
			[]string{"SELECT 1+--2; x\n+ 3|SELECT", "y|?"}},
		{"single dash", "SELECT 1 - -2; y", scsOn, []string{"SELECT 1 - -2|SELECT", "y|?"}},
		{"block comment", "SELECT /* ; */ 1; y", scsOn, []string{"SELECT /* ; */ 1|SELECT", "y|?"}},
		{"nested comments", "/* a /* b */ ; c */ SELECT 1; LISTEN y", scsOn,
			[]string{"SELECT 1|SELECT", "LISTEN y|LISTEN ?"}},
		{"nested comment tricky", "SELECT 1 /*/ ; */ ; */ x; y", scsOn,
			[]string{"SELECT 1|SELECT", "*/ x|", "y|?"}},
		{"nested comment open close", "SELECT 1 /*/*/ ; */ ; */ x; y", scsOn,
			[]string{"SELECT 1 /*/*/ ; */ ; */ x|SELECT", "y|?"}},
		{"nested comment twice", "SELECT 1 /* /* */ ; */ x; y", scsOn,
			[]string{"SELECT 1 /* /* */ ; */ x|SELECT", "y|?"}},
		{"comment close stars", "SELECT /** ; **/ 1; y", scsOn, []string{"SELECT /** ; **/ 1|SELECT", "y|?"}},
		{"comment between keywords", "SET/**/LOCAL -- x\n a", scsOn, []string{"SET/**/LOCAL -- x\n a|SET LOCAL ?"}},
		{"slash star inside operator", "SELECT 1 +/* ; */ 2; y", scsOn,
			[]string{"SELECT 1 +/* ; */ 2|SELECT", "y|?"}},
		{"unterminated comment", "SELECT /* ; LISTEN x", scsOn, []string{"SELECT|SELECT"}},
		{"unterminated nested comment", "SELECT 1; /* /* */ ; LISTEN x", scsOn, []string{"SELECT 1|SELECT"}},

		{"dollar quote", "SELECT $$a;b$$; LISTEN x", scsOn,
			[]string{"SELECT $$a;b$$|SELECT", "LISTEN x|LISTEN ?"}},
		{"dollar quote with tag", "DO $body$ BEGIN; $x$ ; $$ ; END $body$; LISTEN x", scsOn,
			[]string{"DO $body$ BEGIN; $x$ ; $$ ; END $body$|DO", "LISTEN x|LISTEN ?"}},
		{"dollar quote other tag inside", "SELECT $a$ $b$ ; $b$ $a$; x", scsOn,
			[]string{"SELECT $a$ $b$ ; $b$ $a$|SELECT", "x|?"}},
		{"dollar tag prefix inside", "SELECT $a$ $ab$ ; $a$; x", scsOn,
			[]string{"SELECT $a$ $ab$ ; $a$|SELECT", "x|?"}},
		{"dollar tag shares dollar", "SELECT $a$x$$a$; y", scsOn, []string{"SELECT $a$x$$a$|SELECT", "y|?"}},
		{"dollar tag case sensitive", "SELECT $A$ $a$; $A$; y", scsOn, []string{"SELECT $A$ $a$; $A$|SELECT", "y|?"}},
		{"dollar tag with underscore digits", "SELECT $_x1$;$_x1$; y", scsOn, []string{"SELECT $_x1$;$_x1$|SELECT", "y|?"}},
		{"dollar tag non-ASCII", "SELECT $\xc3\xa9$;$\xc3\xa9$; y", scsOn, []string{"SELECT $\xc3\xa9$;$\xc3\xa9$|SELECT", "y|?"}},
		{"dollar quote contains quotes", "SELECT $$'\"/*--$$; y", scsOn, []string{"SELECT $$'\"/*--$$|SELECT", "y|?"}},
		{"unterminated dollar quote", "SELECT $q$ ; LISTEN x $Q$", scsOn, []string{"SELECT $q$ ; LISTEN x $Q$|SELECT"}},
		{"param", "SELECT $1; LISTEN x", scsOn, []string{"SELECT $1|SELECT", "LISTEN x|LISTEN ?"}},
		{"param then dollar", "SELECT $12$; LISTEN x", scsOn, []string{"SELECT $12$|SELECT", "LISTEN x|LISTEN ?"}},
		{"dollar digit tag is not a quote", "SELECT $1a$; x", scsOn, []string{"SELECT $1a$|SELECT", "x|?"}},
		{"lone dollar", "SELECT $ ; x", scsOn, []string{"SELECT $|SELECT", "x|?"}},
		{"dollar in identifier", "SELECT a$$b; LISTEN x", scsOn, []string{"SELECT a$$b|SELECT ?", "LISTEN x|LISTEN ?"}},
		{"dollar after identifier", "SELECT a $$b; $$; x", scsOn, []string{"SELECT a $$b; $$|SELECT ?", "x|?"}},
		{"dollar after number", "SELECT 1$$;$$; x", scsOn, []string{"SELECT 1$$;$$|SELECT", "x|?"}},

		{"E string escaped quote", `SELECT E'\''; LISTEN x`, scsOn, []string{`SELECT E'\''|SELECT`, "LISTEN x|LISTEN ?"}},
		{"e string lower", `SELECT e'\';'; LISTEN x`, scsOn, []string{`SELECT e'\';'|SELECT`, "LISTEN x|LISTEN ?"}},
		{"E string doubled quote", `SELECT E'a'';'; x`, scsOn, []string{`SELECT E'a'';'|SELECT`, "x|?"}},
		{"E string escaped backslash", `SELECT E'\\'; x`, scsOn, []string{`SELECT E'\\'|SELECT`, "x|?"}},
		{"E string backslash at end", `SELECT E'\`, scsOn, []string{`SELECT E'\|SELECT`}},
		{"plain string backslash scs on", `SELECT '\'; LISTEN x`, scsOn, []string{`SELECT '\'|SELECT`, "LISTEN x|LISTEN ?"}},
		{"plain string backslash scs off", `SELECT '\'; LISTEN x`, scsOff, []string{`SELECT '\'; LISTEN x|SELECT`}},
		{"plain string escaped backslash scs off", `SELECT '\\'; LISTEN x`, scsOff,
			[]string{`SELECT '\\'|SELECT`, "LISTEN x|LISTEN ?"}},
		{"identifier ending in e", `SELECT abce'\'; x`, scsOn, []string{`SELECT abce'\'|SELECT ?`, "x|?"}},
		{"number then e string", `SELECT 1e'\''; x`, scsOn, []string{`SELECT 1e'\''|SELECT`, "x|?"}},
		{"bit string", "SELECT B'01;'; x", scsOn, []string{"SELECT B'01;'|SELECT", "x|?"}},
		{"bit string no backslash scs off", `SELECT b'\'; LISTEN x`, scsOff, []string{`SELECT b'\'|SELECT`, "LISTEN x|LISTEN ?"}},
		{"bit string doubled quote starts new string", `SELECT B'1''\'; x'; y`, scsOff, []string{`SELECT B'1''\'; x'|SELECT`, "y|?"}},
		{"hex string", "SELECT X'1F;'; x", scsOn, []string{"SELECT X'1F;'|SELECT", "x|?"}},
		{"national string", "SELECT N'a;b'; x", scsOn, []string{"SELECT N'a;b'|SELECT", "x|?"}},
		{"national string scs off", `SELECT n'\'; x'; y`, scsOff, []string{`SELECT n'\'; x'|SELECT`, "y|?"}},
		{"unicode string", `SELECT U&'\0061;'; x`, scsOn, []string{`SELECT U&'\0061;'|SELECT`, "x|?"}},
		{"unicode string backslash scs on", `SELECT u&'\'; LISTEN x`, scsOn, []string{`SELECT u&'\'|SELECT`, "LISTEN x|LISTEN ?"}},
		{"unicode string backslash scs off", `SELECT U&'\'; LISTEN x`, scsOff, []string{`SELECT U&'\'; LISTEN x|SELECT`}},
		{"U without amp", "SELECT U & 'a;'; x", scsOn, []string{"SELECT U & 'a;'|SELECT ?", "x|?"}},
		{"unterminated string", "SELECT 'abc; LISTEN x", scsOn, []string{"SELECT 'abc; LISTEN x|SELECT"}},
		{"unterminated E string", `SELECT E'\'; LISTEN x`, scsOn, []string{`SELECT E'\'; LISTEN x|SELECT`}},
		{"string continuation keeps E rules", "SELECT E'a'\n'\\'; LISTEN x; '; y", scsOn,
			[]string{"SELECT E'a'\n'\\'; LISTEN x; '|SELECT", "y|?"}},
		{"string continuation over comment", "SELECT E'a' -- c\n  \n'\\'; LISTEN x; '; y", scsOn,
			[]string{"SELECT E'a' -- c\n  \n'\\'; LISTEN x; '|SELECT", "y|?"}},
		{"no continuation without newline", "SELECT E'a' '\\'; LISTEN x", scsOn,
			[]string{"SELECT E'a' '\\'|SELECT", "LISTEN x|LISTEN ?"}},
		{"no continuation over block comment", "SELECT E'a' /**/\n'\\'; LISTEN x", scsOn,
			[]string{"SELECT E'a' /**/\n'\\'|SELECT", "LISTEN x|LISTEN ?"}},
		{"bit string continuation", "SELECT B'0'\n'1;'; x", scsOn, []string{"SELECT B'0'\n'1;'|SELECT", "x|?"}},

		{"quoted identifier", `SELECT "a;""b"; LISTEN x`, scsOn, []string{`SELECT "a;""b"|SELECT`, "LISTEN x|LISTEN ?"}},
		{"quoted identifier backslash", `SELECT "a\"; x`, scsOff, []string{`SELECT "a\"|SELECT`, "x|?"}},
		{"unicode quoted identifier", `SELECT U&"a;b"; x`, scsOn, []string{`SELECT U&"a;b"|SELECT`, "x|?"}},
		{"unterminated quoted identifier", `SELECT "a; LISTEN x`, scsOn, []string{`SELECT "a; LISTEN x|SELECT`}},

		{"parentheses", "CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b); LISTEN c", scsOn,
			[]string{"CREATE RULE r AS ON INSERT TO t DO ALSO (NOTIFY a; NOTIFY b)|CREATE ? ?", "LISTEN c|LISTEN ?"}},
		{"unbalanced close paren", "SELECT ); x", scsOn, []string{"SELECT )|SELECT", "x|?"}},
		{"unbalanced open paren", "SELECT (; x", scsOn, []string{"SELECT (; x|SELECT"}},
		{"begin atomic", "CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END; LISTEN x", scsOn,
			[]string{"CREATE FUNCTION f() RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT 1; SELECT CASE WHEN true THEN 1 END; END|CREATE FUNCTION ?", "LISTEN x|LISTEN ?"}},
		{"begin atomic or replace", "create or replace procedure p() begin /* c */ atomic insert into t values (1); end; commit", scsOn,
			[]string{"create or replace procedure p() begin /* c */ atomic insert into t values (1); end|CREATE OR REPLACE", "commit|COMMIT"}},
		{"function named begin", "CREATE FUNCTION begin() RETURNS int AS 'select 1' LANGUAGE sql; LISTEN x", scsOn,
			[]string{"CREATE FUNCTION begin() RETURNS int AS 'select 1' LANGUAGE sql|CREATE FUNCTION BEGIN", "LISTEN x|LISTEN ?"}},
		{"begin atomic only in routines", "SELECT begin atomic; x", scsOn, []string{"SELECT begin atomic|SELECT BEGIN ATOMIC", "x|?"}},
		{"transaction block", "BEGIN; SELECT 1; END; ABORT", scsOn,
			[]string{"BEGIN|BEGIN", "SELECT 1|SELECT", "END|END", "ABORT|ABORT"}},

		// 0x95 0x5C is one SJIS character (U+8868) whose trail byte is '\'.
		{"sjis trail backslash scs off", "SELECT '\x95\x5c'; LISTEN x", sjisOff,
			[]string{"SELECT '\x95\x5c'|SELECT", "LISTEN x|LISTEN ?"}},
		{"sjis trail backslash E string", "SELECT E'\x95\x5c'; LISTEN x", sjis,
			[]string{"SELECT E'\x95\x5c'|SELECT", "LISTEN x|LISTEN ?"}},
		{"same bytes in UTF8 escape the quote", "SELECT E'\x95\x5c'; LISTEN x", scsOn,
			[]string{"SELECT E'\x95\x5c'; LISTEN x|SELECT"}},
		{"sjis escaped multibyte char", "SELECT E'\\\x95\x5c'; LISTEN x", sjis,
			[]string{"SELECT E'\\\x95\x5c'|SELECT", "LISTEN x|LISTEN ?"}},
		{"sjis identifier", "SELECT \x95\x5c\x95\x5c; x", sjis, []string{"SELECT \x95\x5c\x95\x5c|SELECT ?", "x|?"}},
		{"sjis half-width katakana", "SELECT E'\xb1\\'; x'; y", sjis, []string{"SELECT E'\xb1\\'; x'|SELECT", "y|?"}},
		{"sjis dollar tag", "SELECT $\x95\x5c$;$\x95\x5c$; y", sjis, []string{"SELECT $\x95\x5c$;$\x95\x5c$|SELECT", "y|?"}},
		{"big5 trail backslash", "SELECT E'\xa5\x5c'; x", Options{Encoding: EncodingBIG5},
			[]string{"SELECT E'\xa5\x5c'|SELECT", "x|?"}},
		{"gbk trail backslash", "SELECT E'\x81\x5c'; x", Options{Encoding: EncodingGBK},
			[]string{"SELECT E'\x81\x5c'|SELECT", "x|?"}},
		{"uhc lead then backslash", "SELECT E'\x81\x5c'; x'; y", Options{Encoding: EncodingUHC},
			[]string{"SELECT E'\x81\x5c'; x'|SELECT", "y|?"}},
		{"gb18030 two byte", "SELECT E'\x81\x5c'; x", Options{Encoding: EncodingGB18030},
			[]string{"SELECT E'\x81\x5c'|SELECT", "x|?"}},
		{"gb18030 four byte", "SELECT E'\x81\x30\x81\x30\\'; x'; y", Options{Encoding: EncodingGB18030},
			[]string{"SELECT E'\x81\x30\x81\x30\\'; x'|SELECT", "y|?"}},
		{"lead byte at end", "SELECT E'\x95", sjis, []string{"SELECT E'\x95|SELECT"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := stmts(tc.sql, tc.opt)
			if fmt.Sprintf("%q", got) != fmt.Sprintf("%q", tc.want) {
				t.Errorf("Scan(%q)\n got %q\nwant %q", tc.sql, got, tc.want)
			}
		})
	}
}

func TestScanSpans(t *testing.T) {
	sql := []byte("  /*c*/ SET  local x = 1 /*d*/ ;\n LISTEN  chan ; ")
	var got []Statement
	Scan(sql, scsOn, func(st Statement) bool {
		got = append(got, st)
		return true
	})
	want := []Statement{
		{Start: 8, End: 24, Keywords: [3]Keyword{KwSet, KwLocal, KwOther}, Words: [3]Span{{8, 11}, {13, 18}, {19, 20}}},
		{Start: 34, End: 46, Keywords: [3]Keyword{KwListen, KwOther}, Words: [3]Span{{34, 40}, {42, 46}}},
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("got  %+v\nwant %+v", got, want)
	}
	if string(sql[got[1].Words[1].Start:got[1].Words[1].End]) != "chan" {
		t.Fatal("bad word span")
	}
}

func TestScanStopsEarly(t *testing.T) {
	n := 0
	Scan([]byte("a; b; c"), scsOn, func(Statement) bool {
		n++
		return n < 2
	})
	if n != 2 {
		t.Fatalf("fn called %d times, want 2", n)
	}
}

func TestContainsWord(t *testing.T) {
	tests := []struct {
		sql  string
		word Keyword
		want bool
	}{
		{"select 1; listen x", KwListen, true},
		{"SELECT 'LISTEN'; /* listen */ \"listen\" -- listen\n $$listen$$", KwListen, false},
		{"SELECT listener, xlisten", KwListen, false},
		{"SELECT 1", KwOther, false},
		{"SELECT foo", KwOther, true},
		{"SELECT 1", KwNone, false},
		{"DECLARE c CURSOR WITH HOLD FOR SELECT 1", KwHold, true},
		{"SELECT (((set)))", KwSet, true},
		{"x", Keyword(255), false},
	}
	for _, tc := range tests {
		if got := ContainsWord([]byte(tc.sql), scsOn, tc.word); got != tc.want {
			t.Errorf("ContainsWord(%q, %v) = %v, want %v", tc.sql, tc.word, got, tc.want)
		}
	}
}

func TestContainsIdentPrefix(t *testing.T) {
	tests := []struct {
		sql, prefix string
		want        bool
	}{
		{"SELECT pg_advisory_lock(1)", "pg_advisory", true},
		{"SELECT PG_ADVISORY_XACT_LOCK(1)", "pg_advisory", true},
		{"SELECT pg_catalog.pg_advisory_lock(1)", "pg_advisory", true},
		{"SELECT 'pg_advisory_lock(1)'", "pg_advisory", false},
		{"SELECT 1 -- pg_advisory_lock(1)", "pg_advisory", false},
		{"SELECT $$pg_advisory_lock(1)$$", "pg_advisory", false},
		{"SELECT xpg_advisory_lock(1)", "pg_advisory", false},
		{"SELECT pg_advisor", "pg_advisory", false},
		{`SELECT "pg_advisory_lock"(1)`, "pg_advisory", true},
		{`SELECT "pg_advisor"`, "pg_advisory", false},
		{`SELECT "pg_""x"`, `pg_"x`, true},
		{`SELECT "pg_"`, `pg_"`, false},
		{`SELECT U&"\0070g_advisory_lock"(1)`, "pg_advisory", true},
		{"SELECT set_config('a', 'b', false)", "set_config", true},
		{"SELECT myset_config()", "set_config", false},
		{"1 + 2", "", false},
		{"SELECT", "", true},
	}
	for _, tc := range tests {
		if got := ContainsIdentPrefix([]byte(tc.sql), scsOn, tc.prefix); got != tc.want {
			t.Errorf("ContainsIdentPrefix(%q, %q) = %v, want %v", tc.sql, tc.prefix, got, tc.want)
		}
	}
}

func TestEncodingByName(t *testing.T) {
	tests := map[string]Encoding{
		"UTF8": EncodingUTF8, "utf-8": EncodingUTF8, "LATIN1": EncodingUTF8, "": EncodingUTF8,
		"SJIS": EncodingSJIS, "Shift_JIS": EncodingSJIS, "SHIFT_JIS_2004": EncodingSJIS, "WIN932": EncodingSJIS,
		"mskanji": EncodingSJIS, "BIG5": EncodingBIG5, "win950": EncodingBIG5, "GBK": EncodingGBK,
		"WIN936": EncodingGBK, "UHC": EncodingUHC, "WIN949": EncodingUHC, "gb18030": EncodingGB18030,
		"EUC_JP": EncodingUTF8, strings.Repeat("x", 100): EncodingUTF8,
	}
	for name, want := range tests {
		if got := EncodingByName(name); got != want {
			t.Errorf("EncodingByName(%q) = %d, want %d", name, got, want)
		}
	}
}

func TestKeywords(t *testing.T) {
	for k := KwAbort; k < numKeywords; k++ {
		name := k.String()
		if LookupKeyword([]byte(name)) != k || LookupKeyword([]byte(strings.ToLower(name))) != k {
			t.Errorf("LookupKeyword(%q) != %v", name, k)
		}
	}
	if LookupKeyword(nil) != KwNone || LookupKeyword([]byte("xyz")) != KwOther ||
		LookupKeyword([]byte("characteristicsx")) != KwOther || LookupKeyword([]byte("s\xc3\xa9t")) != KwOther {
		t.Error("LookupKeyword misclassifies")
	}
	if KwNone.String() != "" || KwOther.String() != "?" || Keyword(250).String() != "?" {
		t.Error("bad String")
	}
}

// refScan is a reference splitter for inputs made only of letters, digits,
// spaces, newlines, ';' and parentheses: it splits at ';' outside
// parentheses and trims whitespace.
func refScan(s string) []Span {
	var out []Span
	depth, start := 0, 0
	emit := func(end int) {
		a, b := start, end
		for a < b && (s[a] == ' ' || s[a] == '\n') {
			a++
		}
		for b > a && (s[b-1] == ' ' || s[b-1] == '\n') {
			b--
		}
		if a < b {
			out = append(out, Span{a, b})
		}
	}
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '(':
			depth++
		case ')':
			if depth > 0 {
				depth--
			}
		case ';':
			if depth == 0 {
				emit(i)
				start = i + 1
			}
		}
	}
	emit(len(s))
	return out
}

func scanSpans(sql []byte, opt Options) []Span {
	var out []Span
	Scan(sql, opt, func(st Statement) bool {
		out = append(out, Span{st.Start, st.End})
		return true
	})
	return out
}

func TestScanMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewSource(1))
	const alphabet = "ab1 ;;\n()"
	for n := 0; n < 20000; n++ {
		b := make([]byte, rng.Intn(40))
		for i := range b {
			b[i] = alphabet[rng.Intn(len(alphabet))]
		}
		got, want := scanSpans(b, scsOn), refScan(string(b))
		if len(got) != len(want) || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("input %q:\n got %v\nwant %v", b, got, want)
		}
	}
}

// TestScanGenerated builds statements from tokens that hide ';' in all the
// ways the lexer knows and checks that Scan finds exactly those statements.
func TestScanGenerated(t *testing.T) {
	content := []string{
		"sel", "x1", "a$b", "42", "$3", "+", "::", "<>", "'a;b'", "'it''s;'", `E'x\';y'`, `e'\\'`,
		`B'0;1'`, `X'f;'`, `N'a;'`, `U&'\0041;'`, `"q;""x"`, `U&"i;"`, "$$ ; ' $$", "$t$ $$ ; $t$",
		"(x; y)", "((;);)", "$", "-", "/",
	}
	ignorable := []string{" ", "\n", "\t", "/* ; /* ' */ */", "-- ; '\n", "/**/"}
	rng := rand.New(rand.NewSource(2))
	for n := 0; n < 5000; n++ {
		var sb strings.Builder
		var want []Span
		nstmt := rng.Intn(5)
		for s := 0; s < nstmt; s++ {
			if s > 0 {
				sb.WriteString(";")
			}
			first, last := -1, -1
			for a := rng.Intn(6); a > 0; a-- {
				sb.WriteByte(" \n"[rng.Intn(2)])
				if rng.Intn(3) == 0 {
					sb.WriteString(ignorable[rng.Intn(len(ignorable))])
					continue
				}
				if first < 0 {
					first = sb.Len()
				}
				sb.WriteString(content[rng.Intn(len(content))])
				last = sb.Len()
			}
			sb.WriteByte(' ')
			if first >= 0 {
				want = append(want, Span{first, last})
			}
		}
		sql := sb.String()
		got := scanSpans([]byte(sql), scsOn)
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Fatalf("input %q:\n got %v\nwant %v", sql, got, want)
		}
	}
}

var pgbenchQueries = [][]byte{
	[]byte("UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2;"),
	[]byte("SELECT abalance FROM pgbench_accounts WHERE aid = 48213;"),
	[]byte("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (7, 1, 48213, -2201, CURRENT_TIMESTAMP);"),
}

func TestScanNoAlloc(t *testing.T) {
	n := 0
	fn := func(st Statement) bool { n += st.End; return true }
	allocs := testing.AllocsPerRun(100, func() {
		for _, q := range pgbenchQueries {
			Scan(q, scsOn, fn)
			ContainsWord(q, scsOn, KwListen)
			ContainsIdentPrefix(q, scsOn, "pg_advisory")
		}
	})
	if allocs != 0 {
		t.Fatalf("%v allocs per run", allocs)
	}
}

func BenchmarkScan(b *testing.B) {
	q := pgbenchQueries[0]
	b.ReportAllocs()
	b.SetBytes(int64(len(q)))
	var kw Keyword
	fn := func(st Statement) bool { kw = st.Keywords[0]; return true }
	for b.Loop() {
		Scan(q, scsOn, fn)
	}
	if kw != KwUpdate {
		b.Fatal(kw)
	}
}

func BenchmarkContainsIdentPrefix(b *testing.B) {
	q := pgbenchQueries[2]
	b.ReportAllocs()
	b.SetBytes(int64(len(q)))
	for b.Loop() {
		if ContainsIdentPrefix(q, scsOn, "pg_advisory") {
			b.Fatal("match")
		}
	}
}
