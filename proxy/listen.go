package proxy

import (
	"bytes"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/sqllex"
)

// refuseListenSQL makes the server itself raise the error for a LISTEN in
// transaction or statement mode, so that the client's transaction state
// (aborted inside a transaction block, untouched outside one) is exactly
// what Postgres would produce for a failing statement.
const refuseListenSQL = `DO $mux$BEGIN RAISE EXCEPTION USING ERRCODE = 'feature_not_supported', ` +
	`MESSAGE = 'LISTEN is not supported in transaction or statement pooling mode', ` +
	`HINT = 'notifications would be lost when mux reuses the server connection; connect through a database in session pool mode to use LISTEN'; END$mux$`

// containsFold reports whether b contains word in any letter case; a cheap
// filter before lexing.
func containsFold(b []byte, word string) bool {
	n := len(word)
	for i := 0; i+n <= len(b); i++ {
		if b[i]|0x20 == word[0] && bytes.EqualFold(b[i:i+n], []byte(word)) {
			return true
		}
	}
	return false
}

// refuseListen returns a replacement for a Query or Parse message (msg is
// the whole message) that contains a LISTEN statement, or nil.
func refuseListen(msg []byte, opt sqllex.Options) []byte {
	typ := msg[0]
	body := msg[wire.HeaderLen:]
	var name, sql, rest []byte
	switch typ {
	case 'Q':
		sql = bytes.TrimSuffix(body, []byte{0})
	case 'P':
		i := bytes.IndexByte(body, 0)
		if i < 0 {
			return nil
		}
		name = body[:i]
		j := bytes.IndexByte(body[i+1:], 0)
		if j < 0 {
			return nil
		}
		sql = body[i+1 : i+1+j]
		rest = body[i+2+j:]
	default:
		return nil
	}
	if !containsFold(sql, "listen") {
		return nil
	}
	found := false
	sqllex.Scan(sql, opt, func(st sqllex.Statement) bool {
		found = st.Keywords[0] == sqllex.KwListen
		return !found
	})
	if !found {
		return nil
	}
	if typ == 'Q' {
		return wire.AppendQuery(nil, refuseListenSQL)
	}
	n := 4 + len(name) + 1 + len(refuseListenSQL) + 1 + len(rest)
	out := []byte{'P', byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)}
	out = append(out, name...)
	out = append(out, 0)
	out = append(out, refuseListenSQL...)
	out = append(out, 0)
	return append(out, rest...)
}
