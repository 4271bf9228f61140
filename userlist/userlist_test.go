package userlist

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []Entry
	}{
		{"empty", "", nil},
		{"comments and blank lines", ";; users\n\n# hash comment\n  ; indented\n", nil},
		{
			"plain md5 scram",
			"\"alice\" \"secret\"\n\"bob\" \"md5512b4c65b87eac3465c68e92db259eba\"\n\"carol\" \"SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5\"\n",
			[]Entry{{"alice", "secret"}, {"bob", "md5512b4c65b87eac3465c68e92db259eba"}, {"carol", "SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5"}},
		},
		{
			"doubled quotes, spaces, semicolons inside quotes",
			"\"we\"\"ird\" \"pa ss\"\"; word\"\n\"\"\"\" \"\"\"\"\"\"\n",
			[]Entry{{`we"ird`, `pa ss"; word`}, {`"`, `""`}},
		},
		{
			"rest of line ignored, tabs, CRLF",
			"\t\"a\"\t\"b\" \"ignored\" trailing\r\n\"c\"  \"d\"\r\n",
			[]Entry{{"a", "b"}, {"c", "d"}},
		},
		{"empty fields", "\"\" \"\"\n", []Entry{{"", ""}}},
		{"duplicates kept in order", "\"a\" \"1\"\n\"a\" \"2\"\n", []Entry{{"a", "1"}, {"a", "2"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Parse(strings.NewReader(tt.in), "userlist.txt")
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got  %q\nwant %q", got, tt.want)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ in, want string }{
		{"alice secret\n", "u.txt:1: user name: missing opening double quote"},
		{"\"alice\" secret\n", "u.txt:1: password: missing opening double quote"},
		{"\"alice\"\n", "password: missing opening double quote"},
		{"\"a\" \"b\"\n\"alice\n", "u.txt:2: user name: missing closing double quote"},
		{"\"alice\" \"sec\n", "password: missing closing double quote"},
		{"\"alice\", \"b\"\n", "password: missing opening double quote"},
		{"\"a\"\"b\"\n", "password: missing opening double quote"}, // one field: a"b
	}
	for _, tt := range tests {
		_, err := Parse(strings.NewReader(tt.in), "u.txt")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Parse(%q) error = %v, want it to contain %q", tt.in, err, tt.want)
		}
	}
}

func TestLoad(t *testing.T) {
	path := filepath.Join(t.TempDir(), "userlist.txt")
	if err := os.WriteFile(path, []byte("\"alice\" \"pw\"\nbroken\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(path); err == nil || !strings.Contains(err.Error(), path+":2: user name") {
		t.Fatalf("Load: error %v, want one naming %s:2", err, path)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.txt")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("Load of a missing file: %v", err)
	}
}

func TestParseTooLarge(t *testing.T) {
	big := strings.Repeat("# padding\n", maxSize/10+1)
	if _, err := Parse(strings.NewReader(big), "big.txt"); err == nil || !strings.Contains(err.Error(), "larger than 16 MiB") {
		t.Fatalf("error %v, want larger than 16 MiB", err)
	}
}
