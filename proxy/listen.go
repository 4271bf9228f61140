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

// wordSet says which of the words that make mux look closer at a query
// (its lexer runs only then) occur in the query's text.
type wordSet uint8

const (
	wordListen wordSet = 1 << iota
	wordSetConfig
	wordAdvisory
	wordDeallocate
	wordDiscard
	// wordLeading: one of the keywords that begin a statement which may
	// change session state (scanState): SET (and RESET), DISCARD, DO,
	// CALL, CREATE, DECLARE, PREPARE, LISTEN (and UNLISTEN), LOAD.
	wordLeading
)

// findWords reports which of the words in wordSet occur in sql, in any
// ASCII letter case (keywords are ASCII and never quoted), in one pass:
// the cheap filter before lexing. A Unicode-escaped identifier (U&"...")
// counts as set_config and advisory, which it may spell.
func findWords(sql []byte) wordSet {
	var w wordSet
	for i, c := range sql {
		if !wordStart[c] {
			continue
		}
		b := sql[i:]
		switch c | 0x20 {
		case 'l':
			if sqllex.HasPrefixFold(b, "listen") {
				w |= wordListen | wordLeading
			} else if sqllex.HasPrefixFold(b, "load") {
				w |= wordLeading
			}
		case 's':
			if sqllex.HasPrefixFold(b, "set_config") {
				w |= wordSetConfig | wordLeading
			} else if sqllex.HasPrefixFold(b, "set") {
				w |= wordLeading
			}
		case 'a':
			if sqllex.HasPrefixFold(b, "advisory") {
				w |= wordAdvisory
			}
		case 'd':
			switch {
			case sqllex.HasPrefixFold(b, "deallocate"):
				w |= wordDeallocate
			case sqllex.HasPrefixFold(b, "discard"):
				w |= wordDiscard | wordLeading
			case sqllex.HasPrefixFold(b, "do"), sqllex.HasPrefixFold(b, "declare"):
				w |= wordLeading
			}
		case 'c':
			if sqllex.HasPrefixFold(b, "call") || sqllex.HasPrefixFold(b, "create") {
				w |= wordLeading
			}
		case 'p':
			if sqllex.HasPrefixFold(b, "prepare") {
				w |= wordLeading
			}
		case 'u':
			// A U&"..." identifier can spell any name in escapes
			// (U&"pg_\0061dvisory_lock"): the identifier checks must run.
			if len(b) >= 3 && b[1] == '&' && b[2] == '"' {
				w |= wordSetConfig | wordAdvisory
			}
		}
	}
	return w
}

// wordStart marks the bytes a word in wordSet starts with.
var wordStart = func() (t [256]bool) {
	for _, c := range "lsadcpu" {
		t[c], t[c-'a'+'A'] = true, true
	}
	return t
}()

// refuseListen returns a replacement for a Query or Parse message (msg is
// the whole message) that contains a LISTEN statement, or nil. It lexes
// the text: callers run it only where findWords saw "listen".
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
