package userlist

import (
	"strings"
	"testing"
)

func FuzzParse(f *testing.F) {
	f.Add([]byte(";; users\n\"alice\" \"SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5\"\n\"batch\" \"batch \"\"quoted\"\" pw\"\n"))
	f.Add([]byte("\"a\" \"b\"\n; c\n# d\n\n\"e\"\"f\" \"g\"\"\" rest\r\n"))
	f.Add([]byte("\"\" \"\"\n\"x\"\t\"md5512b4c65b87eac3465c68e92db259eba\"\n"))
	f.Add([]byte("\"u\" \"SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := Parse(strings.NewReader(string(data)), "fuzz.txt")
		if err != nil {
			if entries != nil {
				t.Fatal("Parse returned entries and an error")
			}
			return
		}
		// Writing the entries back out and reading them gives the same.
		var b strings.Builder
		quote := func(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }
		for _, e := range entries {
			b.WriteString(quote(e.User) + " " + quote(e.Secret) + "\n")
		}
		again, err := Parse(strings.NewReader(b.String()), "again.txt")
		if err != nil || len(again) != len(entries) {
			t.Fatalf("re-reading %q: %v, %q", b.String(), err, again)
		}
		for i := range entries {
			if again[i] != entries[i] {
				t.Fatalf("entry %d: %q became %q", i, entries[i], again[i])
			}
		}
	})
}
