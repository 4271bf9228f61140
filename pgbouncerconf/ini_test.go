package pgbouncerconf

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// kvs is a compact form of a section's entries for comparisons.
func kvs(entries []KV) [][2]string {
	out := [][2]string{}
	for _, kv := range entries {
		out = append(out, [2]string{kv.Key, kv.Value})
	}
	return out
}

func TestParseINI(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want map[string][][2]string
	}{
		{
			name: "sections keys and comments",
			in: ";; comment\n# another\n\n[databases]\napp = host=db port=5433\n" +
				"[pgbouncer]\nlisten_port = 6432\n  ; indented comment\n\tpool_mode=transaction  \n",
			want: map[string][][2]string{
				"databases": {{"app", "host=db port=5433"}},
				"pgbouncer": {{"listen_port", "6432"}, {"pool_mode", "transaction"}},
			},
		},
		{
			name: "setting and section names are case-insensitive, names keep case",
			in:   "[PgBouncer]\nListen_Port = 1\n[DATABASES]\nMyDB = host=x\n[Users]\nBob = pool_mode=session\n",
			want: map[string][][2]string{
				"pgbouncer": {{"listen_port", "1"}},
				"databases": {{"MyDB", "host=x"}},
				"users":     {{"Bob", "pool_mode=session"}},
			},
		},
		{
			name: "no inline comments; = and quotes kept in values",
			in:   "[pgbouncer]\nauth_query = SELECT a; -- b # c\nx = 'q' \"r\" = s\n",
			want: map[string][][2]string{
				"pgbouncer": {{"auth_query", "SELECT a; -- b # c"}, {"x", "'q' \"r\" = s"}},
			},
		},
		{
			name: "empty values",
			in:   "[databases]\nfoodb =\n[pgbouncer]\nunix_socket_dir =   \n",
			want: map[string][][2]string{
				"databases": {{"foodb", ""}},
				"pgbouncer": {{"unix_socket_dir", ""}},
			},
		},
		{
			name: "quoted names",
			in:   "[databases]\n\"Sales Data\" = host=a\n\"say \"\"hi\"\"\"=host=b\n'x;y' = host=c\n* = host=d\n",
			want: map[string][][2]string{
				"databases": {{"Sales Data", "host=a"}, {`say "hi"`, "host=b"}, {"x;y", "host=c"}, {"*", "host=d"}},
			},
		},
		{
			name: "CRLF line ends and repeated keys",
			in:   "[pgbouncer]\r\nverbose = 1\r\nverbose = 2\r\n",
			want: map[string][][2]string{"pgbouncer": {{"verbose", "1"}, {"verbose", "2"}}},
		},
		{
			name: "section header with comment, empty section, repeated section",
			in:   "[users] ; none yet\n[pgbouncer]\na = 1\n[pgbouncer]\nb = 2\n",
			want: map[string][][2]string{"users": {}, "pgbouncer": {{"a", "1"}, {"b", "2"}}},
		},
		{
			name: "empty input",
			in:   "",
			want: map[string][][2]string{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ini, err := ParseINI(strings.NewReader(tt.in), "test.ini")
			if err != nil {
				t.Fatalf("ParseINI: %v", err)
			}
			got := map[string][][2]string{}
			for name, entries := range ini.Sections {
				got[name] = kvs(entries)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestParseINILineNumbers(t *testing.T) {
	ini, err := ParseINI(strings.NewReader("; c\n[pgbouncer]\n\nverbose = 1\n"), "dir/p.ini")
	if err != nil {
		t.Fatal(err)
	}
	want := KV{Key: "verbose", Value: "1", Line: 4, File: "dir/p.ini"}
	if got := ini.Sections["pgbouncer"][0]; got != want {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	if ini.Name != "dir/p.ini" {
		t.Fatalf("Name = %q", ini.Name)
	}
}

func TestParseINIErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"verbose = 1\n", "p.ini:1: \"verbose\" is outside any [section]"},
		{"[pgbouncer\n", "p.ini:1: section header without closing ]"},
		{"\n[ ]\n", "p.ini:2: empty section name"},
		{"[pgbouncer] x = 1\n", "unexpected \"x = 1\" after section header"},
		{"[pgbouncer]\nverbose\n", "p.ini:2: \"verbose\" is not a key = value line"},
		{"[pgbouncer]\nlisten port = 1\n", "expected '=' after \"listen\""},
		{"[databases]\n\"abc = x\n", "missing closing double quote"},
		{"[databases]\n'abc = x\n", "unterminated quoted name"},
		{"[databases]\n'' = x\n", "empty name"},
		{"[databases]\n= x\n", "empty name"},
		{"[pgbouncer]\n%include\n", "p.ini:2: %include needs a file name"},
		{"[pgbouncer]\n%include   \n", "%include needs a file name"},
	}
	for _, tt := range tests {
		_, err := ParseINI(strings.NewReader(tt.in), "p.ini")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseINI(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestParseINIInclude(t *testing.T) {
	dir := t.TempDir()
	abs := filepath.Join(dir, "abs", "abs.ini")
	writeFile(t, abs, "[users]\nbob = pool_mode=session\n")
	// conf.d/db.ini is relative to main.ini; ../more.ini to conf.d/db.ini.
	writeFile(t, filepath.Join(dir, "conf.d", "db.ini"), "app = host=db\n%include ../more.ini\n")
	writeFile(t, filepath.Join(dir, "more.ini"), "other = host=db2\n[pgbouncer]\nverbose = 2\n")
	main := filepath.Join(dir, "main.ini")
	writeFile(t, main, "[databases]\n%include conf.d/db.ini\nlisten_port = 7000\n%include "+abs+"\n[pgbouncer]\nverbose = 3\n")

	f, err := os.Open(main)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ini, err := ParseINI(f, main)
	if err != nil {
		t.Fatal(err)
	}
	// An included file continues the current section, and a section it
	// opens stays open after it, as if its text were pasted in.
	want := map[string][][2]string{
		"databases": {{"app", "host=db"}, {"other", "host=db2"}},
		"pgbouncer": {{"verbose", "2"}, {"listen_port", "7000"}, {"verbose", "3"}},
		"users":     {{"bob", "pool_mode=session"}},
	}
	got := map[string][][2]string{}
	for name, entries := range ini.Sections {
		got[name] = kvs(entries)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
	if kv := ini.Sections["databases"][1]; kv.File != filepath.Join(dir, "more.ini") || kv.Line != 1 {
		t.Errorf("included entry at %s:%d", kv.File, kv.Line)
	}
	if kv, _ := ini.Get("PGBOUNCER", "Verbose"); kv.Value != "3" || kv.File != main || kv.Line != 6 {
		t.Errorf("Get = %+v", kv)
	}
	if _, ok := ini.Get("pgbouncer", "missing"); ok {
		t.Error("Get found a missing key")
	}
}

func TestParseINIIncludeErrors(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "self.ini"), "[pgbouncer]\n%include self.ini\n")
	writeFile(t, filepath.Join(dir, "a.ini"), "%include sub/b.ini\n")
	writeFile(t, filepath.Join(dir, "sub", "b.ini"), "%include ../a.ini\n")
	for i := range 12 {
		writeFile(t, filepath.Join(dir, "deep", "d"+string(rune('a'+i))+".ini"), "%include d"+string(rune('a'+i+1))+".ini\n")
	}
	writeFile(t, filepath.Join(dir, "deep", "dm.ini"), "[pgbouncer]\n")
	writeFile(t, filepath.Join(dir, "missing.ini"), "[pgbouncer]\n%include nothere.ini\n")
	if err := os.Mkdir(filepath.Join(dir, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "dir.ini"), "%include adir\n")
	writeFile(t, filepath.Join(dir, "bad.ini"), "%include bad2.ini\n")
	writeFile(t, filepath.Join(dir, "bad2.ini"), "[pgbouncer\n")

	tests := []struct{ file, want string }{
		{"self.ini", "self.ini:2: %include self.ini: " + filepath.Join(dir, "self.ini") + " includes itself"},
		{"a.ini", "includes itself"},
		{"deep/da.ini", "nested more than 10 deep"},
		{"missing.ini", "missing.ini:2: %include nothere.ini: open " + filepath.Join(dir, "nothere.ini")},
		{"dir.ini", "not a regular file"},
		{"bad.ini", "bad2.ini:1: section header without closing ]"},
	}
	for _, tt := range tests {
		path := filepath.Join(dir, tt.file)
		f, err := os.Open(path)
		if err != nil {
			t.Fatal(err)
		}
		_, err = ParseINI(f, path)
		f.Close()
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: error = %v, want it to contain %q", tt.file, err, tt.want)
		}
	}
}

func TestParseINIIncludeWithoutName(t *testing.T) {
	// Without a name, includes are relative to the current directory.
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	ini, err := ParseINI(strings.NewReader("[pgbouncer]\n%include testdata/local.ini\n"), "")
	if err != nil {
		t.Fatal(err)
	}
	kv, ok := ini.Get("pgbouncer", "max_client_conn")
	if !ok || kv.File != filepath.Join("testdata", "local.ini") {
		t.Fatalf("got %+v (cwd %s)", kv, wd)
	}
}

func TestParseConnString(t *testing.T) {
	tests := []struct {
		in   string
		want []connParam
		err  string
	}{
		{"", nil, ""},
		{"   ", nil, ""},
		{"host=db port=5433", []connParam{{"host", "db"}, {"port", "5433"}}, ""},
		{"  host = db\tUser=x  ", []connParam{{"host", "db"}, {"user", "x"}}, ""},
		{"connect_query='SELECT ''a'' = 1' dbname=d", []connParam{{"connect_query", "SELECT 'a' = 1"}, {"dbname", "d"}}, ""},
		{"password='it''s'", []connParam{{"password", "it's"}}, ""},
		{"password=a'b", []connParam{{"password", "a'b"}}, ""},
		{"host=a,b,c", []connParam{{"host", "a,b,c"}}, ""},
		{"host", nil, "\"host\" is not key=value"},
		{"host db", nil, "expected '=' after \"host\""},
		{"=x", nil, "\"=x\" is not key=value"},
		{"host=", nil, "host: empty value"},
		{"host=''", nil, "host: empty value"},
		{"q='abc", nil, "q: unterminated quoted value"},
		{"q='a'b", nil, "unexpected \"b\" after quoted value"},
	}
	for _, tt := range tests {
		got, err := parseConnString(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseConnString(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseConnString(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}
