package pgbouncerconf

import (
	"errors"
	"fmt"
	"io"
	"strings"
)

// AuthEntry is one line of a PgBouncer auth_file.
type AuthEntry struct {
	// User is the user name and Secret its password as written: plain text,
	// an md5 secret ("md5" + 32 hex digits) or a SCRAM-SHA-256 secret.
	User, Secret string
}

// ParseAuthFile reads a PgBouncer auth_file (userlist.txt): one user per
// line as `"user" "password-or-secret"`, where a double quote inside a field
// is written twice. Whatever follows the second field is ignored, as
// PgBouncer does. Blank lines and lines starting with ; or # are skipped.
// Entries are returned in file order; a user listed twice appears twice
// (the later entry wins in PgBouncer). name is used in error messages.
func ParseAuthFile(r io.Reader, name string) ([]AuthEntry, error) {
	data, err := readLimited(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", displayName(name), err)
	}
	var entries []AuthEntry
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimLeft(line, " \t\r\v\f")
		if line == "" || line[0] == ';' || line[0] == '#' {
			continue
		}
		user, rest, err := quotedField(line)
		if err == nil {
			rest = strings.TrimLeft(rest, " \t")
			var secret string
			if secret, _, err = quotedField(rest); err == nil {
				entries = append(entries, AuthEntry{User: user, Secret: secret})
				continue
			}
			err = fmt.Errorf("password: %w", err)
		} else {
			err = fmt.Errorf("user name: %w", err)
		}
		return nil, fmt.Errorf("%s:%d: %v; want \"user\" \"password\"", displayName(name), i+1, err)
	}
	return entries, nil
}

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
