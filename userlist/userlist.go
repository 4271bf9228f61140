// Package userlist reads PgBouncer's auth_file (userlist.txt): one user and
// its password or secret per line.
package userlist

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/muxpg/mux/sqllex"
)

// maxSize bounds the file read, so that auth_file naming a huge file fails
// instead of exhausting memory.
const maxSize = 16 << 20

// Entry is one line of an auth_file.
type Entry struct {
	// User is the user name and Secret its password as written: plain text,
	// an md5 secret ("md5" + 32 hex digits) or a SCRAM-SHA-256 secret.
	User, Secret string
}

// Load reads and parses the auth_file at path.
func Load(path string) ([]Entry, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads an auth_file: one user per line as `"user"
// "password-or-secret"`, where a double quote inside a field is written
// twice. Whatever follows the second field is ignored, as PgBouncer does.
// Blank lines and lines starting with ; or # are skipped. Entries are
// returned in file order; a user listed twice appears twice (the later
// entry wins in PgBouncer). name is used in error messages.
func Parse(r io.Reader, name string) ([]Entry, error) {
	if name == "" {
		name = "<input>"
	}
	data, err := io.ReadAll(io.LimitReader(r, maxSize+1))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(data) > maxSize {
		return nil, fmt.Errorf("%s: larger than %d MiB", name, maxSize>>20)
	}
	var entries []Entry
	for i, line := range strings.Split(string(data), "\n") {
		line = strings.TrimLeft(line, " \t\r\v\f")
		if line == "" || line[0] == ';' || line[0] == '#' {
			continue
		}
		user, rest, err := QuotedField(line)
		if err == nil {
			rest = strings.TrimLeft(rest, " \t")
			var secret string
			if secret, _, err = QuotedField(rest); err == nil {
				entries = append(entries, Entry{User: user, Secret: secret})
				continue
			}
			err = fmt.Errorf("password: %w", err)
		} else {
			err = fmt.Errorf("user name: %w", err)
		}
		return nil, fmt.Errorf("%s:%d: %v; want \"user\" \"password\"", name, i+1, err)
	}
	return entries, nil
}

// QuotedField reads a double-quoted field at the start of s, in which ""
// stands for one double quote, and returns it and the rest of s.
func QuotedField(s string) (field, rest string, err error) {
	if s == "" || s[0] != '"' {
		return "", "", errors.New("missing opening double quote")
	}
	field, rest, ok := sqllex.Unquote(s)
	if !ok {
		return "", "", errors.New("missing closing double quote")
	}
	return field, rest, nil
}
