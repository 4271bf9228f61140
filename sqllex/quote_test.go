package sqllex

import "testing"

func TestUnquote(t *testing.T) {
	for _, tc := range []struct {
		in, value, rest string
		ok              bool
	}{
		{`"a b" c`, "a b", " c", true},
		{`"say ""hi""",x`, `say "hi"`, ",x", true},
		{`'it''s'`, "it's", "", true},
		{`""`, "", "", true},
		{`"open`, "", "", false},
		{``, "", "", false},
	} {
		v, r, ok := Unquote(tc.in)
		if v != tc.value || r != tc.rest || ok != tc.ok {
			t.Errorf("Unquote(%q) = %q, %q, %v; want %q, %q, %v", tc.in, v, r, ok, tc.value, tc.rest, tc.ok)
		}
	}
}
