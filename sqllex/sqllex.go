// Package sqllex splits PostgreSQL query text into statements and finds their leading keywords without parsing.
//
// The lexer follows the token rules of PostgreSQL's scan.l: whitespace,
// -- and nesting /* */ comments, '...' strings (with E, B, X, N and U&
// prefixes, doubled quotes, backslash escapes where they apply, and the
// continuation of a literal over a newline), "quoted identifiers", dollar
// quoting ($tag$...$tag$, but $1 is a parameter), bare words and single-byte
// operator characters.
// Unterminated strings, comments and dollar quotes run to the end of the
// input. In the multibyte client encodings whose trail bytes can be ASCII
// (SJIS, BIG5, GBK, UHC, GB18030) whole characters are stepped over, so a
// trail byte 0x5C is never taken for a backslash.
//
// Nothing here allocates, and no input makes it panic.
package sqllex

// Options describe the session settings that affect lexing.
type Options struct {
	// StandardConformingStrings is the standard_conforming_strings setting
	// (on by default in PostgreSQL). When false, a backslash escapes the next
	// character inside plain '...' strings too.
	StandardConformingStrings bool
	// Encoding is the client_encoding (see EncodingByName).
	Encoding Encoding
}

// Span is a byte range [Start, End) of the input.
type Span struct {
	Start, End int
}

// Statement is one statement of the input.
type Statement struct {
	// Start and End are the byte offsets of the statement in the input:
	// from its first token to the end of its last token, so sql[Start:End]
	// excludes leading and trailing whitespace and comments and the ';'.
	Start, End int
	// Keywords are the first up to 3 bare words of the statement (keywords
	// or unquoted identifiers), KwOther for words that have no constant and
	// KwNone when absent. Collection stops at the first token that is not a
	// bare word (a quoted identifier, string, number, operator, parenthesis).
	Keywords [3]Keyword
	// Words are the positions of the words in Keywords (zero when absent),
	// e.g. to read a channel name after LISTEN.
	Words [3]Span
}

// Scan calls fn for each statement in sql, in order, until fn returns false.
//
// Statements are separated by ';' outside strings, comments and quoted
// identifiers. As in psql, a ';' inside parentheses does not separate
// statements (CREATE RULE ... DO (a; b)), nor does one inside the BEGIN ATOMIC
// ... END body of CREATE [OR REPLACE] FUNCTION/PROCEDURE. Empty statements
// (only whitespace and comments) are skipped.
func Scan(sql []byte, opt Options, fn func(Statement) bool) {
	l := lexer{s: sql, scs: opt.StandardConformingStrings, enc: opt.Encoding}
	var (
		st        Statement
		has       bool       // st has a token
		nwords    int        // leading bare words seen; -1 once collection stopped
		lead      [4]Keyword // first words, to recognise CREATE [OR REPLACE] FUNCTION
		routine   bool       // st is CREATE [OR REPLACE] FUNCTION|PROCEDURE
		depth     int        // parenthesis nesting
		atomic    int        // BEGIN ATOMIC / CASE nesting in a routine body
		prevBegin bool       // previous token was the word BEGIN (in a routine)
	)
	for {
		kind, start := l.next()
		if kind == tokEOF {
			if has {
				fn(st)
			}
			return
		}
		if kind == tokSemicolon && depth == 0 && atomic == 0 {
			if has && !fn(st) {
				return
			}
			st, has, nwords, routine, prevBegin = Statement{}, false, 0, false, false
			continue
		}
		if !has {
			has = true
			st.Start = start
		}
		st.End = l.pos

		if kind != tokWord {
			nwords = -1
			prevBegin = false
			switch kind {
			case tokLParen:
				depth++
			case tokRParen:
				if depth > 0 {
					depth--
				}
			}
			continue
		}

		var kw Keyword
		if nwords == 3 && (lead[0] != KwCreate || lead[1] != KwOr) {
			// Only CREATE OR REPLACE needs a fourth word.
			nwords = -1
		}
		if nwords >= 0 && nwords < len(lead) {
			kw = LookupKeyword(sql[start:l.pos])
			if nwords < len(st.Keywords) {
				st.Keywords[nwords] = kw
				st.Words[nwords] = Span{start, l.pos}
			}
			lead[nwords] = kw
			nwords++
			switch nwords {
			case 2:
				routine = lead[0] == KwCreate && (lead[1] == KwFunction || lead[1] == KwProcedure)
			case 4:
				routine = lead[0] == KwCreate && lead[1] == KwOr && lead[2] == KwReplace &&
					(lead[3] == KwFunction || lead[3] == KwProcedure)
			}
			continue
		}
		if !routine || depth != 0 {
			continue
		}
		kw = LookupKeyword(sql[start:l.pos])
		switch kw {
		case KwAtomic:
			if prevBegin {
				atomic++
			}
		case KwCase:
			if atomic > 0 {
				atomic++
			}
		case KwEnd:
			if atomic > 0 {
				atomic--
			}
		}
		prevBegin = kw == KwBegin
	}
}

// ContainsWord reports whether word occurs in sql as a bare word token
// anywhere (outside strings, comments and quoted identifiers). For KwOther it
// reports whether any bare word without a Keyword constant occurs; for KwNone
// it returns false.
func ContainsWord(sql []byte, opt Options, word Keyword) bool {
	if word == KwNone || word >= numKeywords {
		return false
	}
	name := keywordNames[word]
	l := lexer{s: sql, scs: opt.StandardConformingStrings, enc: opt.Encoding}
	for {
		kind, start := l.next()
		switch kind {
		case tokEOF:
			return false
		case tokWord:
			w := sql[start:l.pos]
			if word == KwOther {
				if LookupKeyword(w) == KwOther {
					return true
				}
			} else if equalFoldASCII(w, name) {
				return true
			}
		}
	}
}

// ContainsIdentPrefix reports whether an identifier starting with prefix
// (in lower case; matched ASCII case-insensitively) occurs in sql outside strings and comments, e.g.
// ContainsIdentPrefix(sql, opt, "pg_advisory") as a cheap filter for advisory
// lock functions.
//
// Besides bare identifiers it also matches quoted ones ("pg_advisory_lock"(1)
// calls the same function). U&"..." identifiers always match, since their
// escapes can spell any name.
func ContainsIdentPrefix(sql []byte, opt Options, prefix string) bool {
	l := lexer{s: sql, scs: opt.StandardConformingStrings, enc: opt.Encoding}
	for {
		kind, start := l.next()
		switch kind {
		case tokEOF:
			return false
		case tokWord:
			if HasPrefixFold(sql[start:l.pos], prefix) {
				return true
			}
		case tokQuotedIdent:
			if sql[start] != '"' || quotedHasPrefixFold(sql[start+1:l.pos], prefix) {
				return true
			}
		}
	}
}

func lowerASCII(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		c += 'a' - 'A'
	}
	return c
}

// HasPrefixFold reports whether w starts with prefix, which is in lower
// case, with w's ASCII letters in either case (as SQL folds keywords and
// bare identifiers).
func HasPrefixFold(w []byte, prefix string) bool {
	if len(w) < len(prefix) {
		return false
	}
	for i := 0; i < len(prefix); i++ {
		if lowerASCII(w[i]) != prefix[i] {
			return false
		}
	}
	return true
}

// quotedHasPrefixFold matches prefix against the body of a quoted identifier
// (after the opening quote; a doubled " stands for one, a single " ends it).
func quotedHasPrefixFold(body []byte, prefix string) bool {
	i := 0
	for p := 0; p < len(prefix); p++ {
		if i >= len(body) {
			return false
		}
		c := body[i]
		if c == '"' {
			if i+1 >= len(body) || body[i+1] != '"' {
				return false
			}
			i++
		}
		if lowerASCII(c) != prefix[p] {
			return false
		}
		i++
	}
	return true
}
