package sqllex

import "strings"

// Unquote reads the string quoted by s[0] at the start of s, in which the
// quote doubled stands for itself (SQL's rule for '...' and "..."; also
// PgBouncer's for its files and console), and returns it and the rest of
// s; false if s is empty or the closing quote is missing.
func Unquote(s string) (value, rest string, ok bool) {
	if s == "" {
		return "", "", false
	}
	q := s[0]
	var b strings.Builder
	i := 1
	for {
		j := strings.IndexByte(s[i:], q)
		if j < 0 {
			return "", "", false
		}
		b.WriteString(s[i : i+j])
		i += j + 1
		if i < len(s) && s[i] == q {
			b.WriteByte(q)
			i++
			continue
		}
		return b.String(), s[i:], true
	}
}
