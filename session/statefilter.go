package session

// The session-state filter: what SQL text may do to a session, found
// cheaply (one byte pass for the words that matter, the lexer only when
// one is there). The proxy notes what it finds and, at the end of a
// transaction that may have changed state, asks the server.

import (
	"bytes"
	"strings"

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

// Words says which of the words that make mux look closer at a query
// (its lexer runs only then) occur in the query's text.
type Words uint8

const (
	WordListen Words = 1 << iota
	WordSetConfig
	WordAdvisory
	WordDeallocate
	WordDiscard
	// WordLeading: one of the keywords that begin a statement which may
	// change session state (ScanState): SET (and RESET), DISCARD, DO,
	// CALL, CREATE, DECLARE, PREPARE, LISTEN (and UNLISTEN), LOAD.
	WordLeading
)

// FindWords reports which of the words in Words occur in sql, in any
// ASCII letter case (keywords are ASCII and never quoted), in one pass:
// the cheap filter before lexing. A Unicode-escaped identifier (U&"...")
// counts as set_config and advisory, which it may spell.
func FindWords(sql []byte) Words {
	var w Words
	for i, c := range sql {
		if !wordStart[c] {
			continue
		}
		b := sql[i:]
		switch c | 0x20 {
		case 'l':
			if sqllex.HasPrefixFold(b, "listen") {
				w |= WordListen | WordLeading
			} else if sqllex.HasPrefixFold(b, "load") {
				w |= WordLeading
			}
		case 's':
			if sqllex.HasPrefixFold(b, "set_config") {
				w |= WordSetConfig | WordLeading
			} else if sqllex.HasPrefixFold(b, "set") {
				w |= WordLeading
			}
		case 'a':
			if sqllex.HasPrefixFold(b, "advisory") {
				w |= WordAdvisory
			}
		case 'd':
			switch {
			case sqllex.HasPrefixFold(b, "deallocate"):
				w |= WordDeallocate
			case sqllex.HasPrefixFold(b, "discard"):
				w |= WordDiscard | WordLeading
			case sqllex.HasPrefixFold(b, "do"), sqllex.HasPrefixFold(b, "declare"):
				w |= WordLeading
			}
		case 'c':
			if sqllex.HasPrefixFold(b, "call") || sqllex.HasPrefixFold(b, "create") {
				w |= WordLeading
			}
		case 'p':
			if sqllex.HasPrefixFold(b, "prepare") {
				w |= WordLeading
			}
		case 'u':
			// A U&"..." identifier can spell any name in escapes
			// (U&"pg_\0061dvisory_lock"): the identifier checks must run.
			if len(b) >= 3 && b[1] == '&' && b[2] == '"' {
				w |= WordSetConfig | WordAdvisory
			}
		}
	}
	return w
}

// wordStart marks the bytes a word in Words starts with.
var wordStart = func() (t [256]bool) {
	for _, c := range "lsadcpu" {
		t[c], t[c-'a'+'A'] = true, true
	}
	return t
}()

// RefuseListen returns a replacement for a Query or Parse message (msg is
// the whole message) that contains a LISTEN statement, or nil. It lexes
// the text: callers run it only where FindWords saw "listen".
func RefuseListen(msg []byte, opt sqllex.Options) []byte {
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

// MaxCustomNames bounds the custom setting names mux watches per client.
const MaxCustomNames = 64

// ScanState is the cheap first filter over query text; w is
// FindWords(sql), and the lexer passes run only for the words it found.
func ScanState(sql []byte, w Words, opt sqllex.Options) StateHit {
	var h StateHit
	if w&WordLeading != 0 {
		h = leadingState(sql, opt)
	}
	if w&WordSetConfig != 0 && sqllex.ContainsIdentPrefix(sql, opt, "set_config") {
		h.May, h.SetConfig = true, true
	}
	advisory := w&WordAdvisory != 0 && hasAdvisory(sql, opt)
	h.May = h.May || advisory
	if h.May {
		h.Custom = customSettingNames(sql)
	}
	if h.Pin == "" && advisory && sessionAdvisory(sql) {
		h.Pin = "pg_advisory_lock"
	}
	return h
}

// leadingState lexes sql for statements whose leading keywords may change
// session state.
func leadingState(sql []byte, opt sqllex.Options) StateHit {
	var h StateHit
	sqllex.Scan(sql, opt, func(st sqllex.Statement) bool {
		kw := st.Keywords
		switch kw[0] {
		case sqllex.KwSet, sqllex.KwReset, sqllex.KwDiscard, sqllex.KwDo, sqllex.KwCall, sqllex.KwUnlisten:
			h.May = true
		case sqllex.KwCreate:
			h.May = true
			switch {
			case kw[1] == sqllex.KwTemp || kw[1] == sqllex.KwTemporary,
				(kw[1] == sqllex.KwLocal || kw[1] == sqllex.KwGlobal) && (kw[2] == sqllex.KwTemp || kw[2] == sqllex.KwTemporary):
				h.Pin = "CREATE TEMPORARY"
			}
		case sqllex.KwDeclare:
			h.May = true
			if sqllex.ContainsWord(sql[st.Start:st.End], opt, sqllex.KwHold) {
				h.Pin = "DECLARE ... WITH HOLD"
			}
		case sqllex.KwPrepare:
			h.May = true
			h.Pin = "PREPARE"
		case sqllex.KwListen:
			h.May = true
			h.Pin = "LISTEN"
		case sqllex.KwLoad:
			h.May, h.Load = true, true
			h.Pin = "LOAD"
		}
		return true
	})
	return h
}

// hasAdvisory reports a call of an advisory lock function in text that
// contains "advisory".
func hasAdvisory(sql []byte, opt sqllex.Options) bool {
	return sqllex.ContainsIdentPrefix(sql, opt, "pg_advisory") || sqllex.ContainsIdentPrefix(sql, opt, "pg_try_advisory")
}

// sessionAdvisory reports, in text where hasAdvisory found a call, one of
// a session-level advisory lock function (the _xact_ ones end with their
// transaction and need nothing).
func sessionAdvisory(sql []byte) bool {
	low := strings.ToLower(string(sql))
	for _, f := range []string{"pg_advisory_lock", "pg_try_advisory_lock"} {
		for i := strings.Index(low, f); i >= 0; {
			rest := low[i+len(f):]
			if !strings.HasPrefix(rest, "_xact") {
				return true
			}
			j := strings.Index(rest, f)
			if j < 0 {
				break
			}
			i += len(f) + j
		}
	}
	return false
}

// Custom settings ("app.tenant") are placeholders that pg_settings does not
// list, so mux reads them by name: the names come from the text (SET x.y,
// RESET x.y, set_config('x.y', …) — also inside DO bodies) and from the
// parameters bound to statements that call set_config.

// customSettingNames finds custom setting names mentioned in sql.
func customSettingNames(sql []byte) []string {
	low := strings.ToLower(string(sql))
	var out []string
	add := func(name string) {
		if IsCustomName(name) && len(out) < MaxCustomNames {
			out = append(out, name)
		}
	}
	for i := 0; i < len(low); {
		j := strings.Index(low[i:], "set_config")
		k := -1
		for _, kw := range []string{"set ", "reset ", "set\t", "set\n"} {
			if x := strings.Index(low[i:], kw); x >= 0 && (k < 0 || x < k) {
				k = x
			}
		}
		switch {
		case j >= 0 && (k < 0 || j <= k):
			p := i + j + len("set_config")
			rest := strings.TrimLeft(low[p:], " \t\r\n")
			if strings.HasPrefix(rest, "(") {
				rest = strings.TrimLeft(rest[1:], " \t\r\n")
				rest = strings.TrimPrefix(rest, "e")
				if strings.HasPrefix(rest, "'") {
					if end := strings.IndexByte(rest[1:], '\''); end > 0 {
						add(rest[1 : 1+end])
					}
				}
			}
			i = p
		case k >= 0:
			p := i + k
			if p > 0 && isIdentByte(low[p-1]) {
				i = p + 3
				continue
			}
			rest := strings.TrimLeft(low[p+strings.IndexAny(low[p:], " \t\n"):], " \t\r\n")
			for _, w := range []string{"session ", "local "} {
				rest = strings.TrimPrefix(rest, w)
			}
			n := 0
			for n < len(rest) && (isIdentByte(rest[n]) || rest[n] == '.') {
				n++
			}
			add(rest[:n])
			i = p + 3
		default:
			return out
		}
	}
	return out
}

func isIdentByte(b byte) bool {
	return b == '_' || b >= 'a' && b <= 'z' || b >= 'A' && b <= 'Z' || b >= '0' && b <= '9' || b >= 0x80
}

// IsCustomName reports whether s looks like a custom setting name (a.b).
func IsCustomName(s string) bool {
	dot := strings.IndexByte(s, '.')
	if dot <= 0 || dot == len(s)-1 || len(s) > 63 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '.' && !isIdentByte(s[i]) {
			return false
		}
	}
	return true
}
