package pgbouncerconf

import (
	"errors"
	"strings"
)

// quotedField reads a double-quoted field at the start of s, in which ""
// stands for one double quote, and returns it and the rest of s.
func quotedField(s string) (field, rest string, err error) {
	if s == "" || s[0] != '"' {
		return "", "", errors.New("missing opening double quote")
	}
	field, rest, ok := unquote(s)
	if !ok {
		return "", "", errors.New("missing closing double quote")
	}
	return field, rest, nil
}

// unquote reads the string quoted by s[0] at the start of s, in which the
// quote doubled stands for itself, and returns it and the rest of s; false
// if the closing quote is missing.
func unquote(s string) (value, rest string, ok bool) {
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
