package pgbouncerconf

import (
	"fmt"
	"strings"

	"github.com/muxpg/mux/sqllex"
)

// connParam is one key=value pair of a [databases] or [users] entry.
type connParam struct{ key, value string }

// parseConnString splits a PgBouncer connection string such as
// "host=db1 port=5432 connect_query='SELECT 1'" into pairs. Values are bare
// (up to the next blank) or single-quoted, with a quote inside written
// twice; empty values are refused, as PgBouncer does. Keys are lower-cased.
func parseConnString(s string) ([]connParam, error) {
	var params []connParam
	for {
		s = strings.TrimLeft(s, " \t\r\n\v\f")
		if s == "" {
			return params, nil
		}
		eq := strings.IndexAny(s, "= \t\r\n\v\f")
		if eq <= 0 {
			return nil, fmt.Errorf("%q is not key=value", firstWord(s))
		}
		key := strings.ToLower(s[:eq])
		s = strings.TrimLeft(s[eq:], " \t\r\n\v\f")
		if s == "" || s[0] != '=' {
			return nil, fmt.Errorf("expected '=' after %q", key)
		}
		s = strings.TrimLeft(s[1:], " \t\r\n\v\f")
		var value string
		if s != "" && s[0] == '\'' {
			var ok bool
			if value, s, ok = sqllex.Unquote(s); !ok {
				return nil, fmt.Errorf("%s: unterminated quoted value", key)
			}
			if s != "" && !strings.ContainsRune(" \t\r\n\v\f", rune(s[0])) {
				return nil, fmt.Errorf("%s: unexpected %q after quoted value", key, firstWord(s))
			}
		} else {
			end := strings.IndexAny(s, " \t\r\n\v\f")
			if end < 0 {
				end = len(s)
			}
			value, s = s[:end], s[end:]
		}
		if value == "" {
			return nil, fmt.Errorf("%s: empty value", key)
		}
		params = append(params, connParam{key, value})
	}
}

func firstWord(s string) string {
	if i := strings.IndexAny(s, " \t\r\n\v\f"); i >= 0 {
		return s[:i]
	}
	return s
}
