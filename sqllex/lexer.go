package sqllex

import "bytes"

type tokKind uint8

const (
	tokEOF         tokKind = iota
	tokWord                // bare identifier or keyword
	tokQuotedIdent         // "ident" or U&"ident"
	tokString              // '...', E'...', B'...', X'...', N'...', U&'...', $tag$...$tag$
	tokParam               // $1
	tokNumber              // digits
	tokSemicolon           // ;
	tokLParen              // (
	tokRParen              // )
	tokOther               // any other single byte (operators, punctuation)
)

// Byte classes.
const (
	clsOther uint8 = iota
	clsSpace
	clsIdent // may start an identifier
	clsDigit
)

var byteClass = func() (t [256]uint8) {
	for _, c := range []byte(" \t\n\r\f\v") {
		t[c] = clsSpace
	}
	for c := 'a'; c <= 'z'; c++ {
		t[c] = clsIdent
		t[c-'a'+'A'] = clsIdent
	}
	t['_'] = clsIdent
	for c := 0x80; c <= 0xff; c++ {
		t[c] = clsIdent
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = clsDigit
	}
	return t
}()

// identContTab[c] reports whether c may continue an identifier.
var identContTab = func() (t [256]bool) {
	for c := range t {
		t[c] = byteClass[c] == clsIdent || byteClass[c] == clsDigit || c == '$'
	}
	return t
}()

func identCont(c byte) bool { return identContTab[c] }

// lexer is a PostgreSQL token scanner following the rules of the server's
// scan.l, reduced to what is needed to find token boundaries.
type lexer struct {
	s   []byte
	pos int
	scs bool // standard_conforming_strings
	enc Encoding
}

// next returns the kind and start offset of the next token, skipping
// whitespace and comments; the token ends at l.pos.
func (l *lexer) next() (tokKind, int) {
	s := l.s
	for l.pos < len(s) {
		i := l.pos
		c := s[i]
		switch byteClass[c] {
		case clsSpace:
			l.pos++
			continue
		case clsIdent:
			return l.word(i), i
		case clsDigit:
			j := i + 1
			for j < len(s) && byteClass[s[j]] == clsDigit {
				j++
			}
			l.pos = j
			return tokNumber, i
		}
		switch c {
		case '-':
			if i+1 < len(s) && s[i+1] == '-' {
				l.pos = lineEnd(s, i+2)
				continue
			}
		case '/':
			if i+1 < len(s) && s[i+1] == '*' {
				l.pos = l.blockComment(i + 2)
				continue
			}
		case '\'':
			if l.scs {
				l.pos = l.quoted(i+1, false, true)
			} else {
				l.pos = l.quoted(i+1, true, true)
			}
			return tokString, i
		case '"':
			l.pos = l.quotedIdent(i + 1)
			return tokQuotedIdent, i
		case '$':
			return l.dollar(i), i
		case ';':
			l.pos = i + 1
			return tokSemicolon, i
		case '(':
			l.pos = i + 1
			return tokLParen, i
		case ')':
			l.pos = i + 1
			return tokRParen, i
		}
		l.pos = i + 1
		return tokOther, i
	}
	return tokEOF, len(s)
}

// word scans a token starting with an identifier-start byte at i: a string
// with a prefix (E'...', B'...', X'...', N'...', U&'...'), a U&"..."
// identifier, or a bare word.
func (l *lexer) word(i int) tokKind {
	s := l.s
	c := s[i]
	if i+1 < len(s) && s[i+1] == '\'' {
		switch c {
		case 'e', 'E':
			l.pos = l.quoted(i+2, true, true)
			return tokString
		case 'b', 'B', 'x', 'X':
			// Bit strings know neither backslash escapes nor ''.
			l.pos = l.quoted(i+2, false, false)
			return tokString
		case 'n', 'N':
			l.pos = l.quoted(i+2, !l.scs, true)
			return tokString
		}
	}
	if (c == 'u' || c == 'U') && i+2 < len(s) && s[i+1] == '&' {
		switch s[i+2] {
		case '\'':
			// PostgreSQL rejects U&'' when standard_conforming_strings
			// is off; treat it like a plain string then.
			l.pos = l.quoted(i+3, !l.scs, true)
			return tokString
		case '"':
			l.pos = l.quotedIdent(i + 3)
			return tokQuotedIdent
		}
	}
	j := i + 1
	if c >= 0x80 {
		j = i + charLen(s, i, l.enc)
	}
	for j < len(s) {
		c := s[j]
		if c >= 0x80 {
			j += charLen(s, j, l.enc)
			continue
		}
		if !identCont(c) {
			break
		}
		j++
	}
	l.pos = j
	return tokWord
}

// lineEnd returns the offset of the newline ending a -- comment whose text
// starts at i, or len(s).
func lineEnd(s []byte, i int) int {
	for ; i < len(s); i++ {
		if s[i] == '\n' || s[i] == '\r' {
			return i
		}
	}
	return len(s)
}

// blockComment returns the end of a (nesting) /* comment whose text starts
// at i, or len(s) if it is unterminated.
func (l *lexer) blockComment(i int) int {
	s := l.s
	depth := 1
	for i < len(s) {
		c := s[i]
		switch {
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			depth++
			i += 2
		case c == '*' && i+1 < len(s) && s[i+1] == '/':
			depth--
			i += 2
			if depth == 0 {
				return i
			}
		case c >= 0x80:
			i += charLen(s, i, l.enc)
		default:
			i++
		}
	}
	return len(s)
}

// quoted returns the end of a string literal whose body starts at i (after
// the opening quote), or len(s) if it is unterminated. backslash: a backslash
// escapes the next character; doubled: a doubled quote stands for a quote. Literals split
// into quoted pieces separated by whitespace containing a newline are one
// literal, with the same escaping rules throughout.
func (l *lexer) quoted(i int, backslash, doubled bool) int {
	s := l.s
	for {
		if !backslash && l.enc == EncodingUTF8 {
			k := bytes.IndexByte(s[i:], '\'')
			if k < 0 {
				return len(s)
			}
			i += k
		} else {
			for i < len(s) {
				c := s[i]
				if c == '\'' {
					break
				}
				if c == '\\' && backslash {
					i++
					if i >= len(s) {
						return len(s)
					}
					c = s[i]
				}
				if c >= 0x80 {
					i += charLen(s, i, l.enc)
				} else {
					i++
				}
			}
			if i >= len(s) {
				return len(s)
			}
		}
		// s[i] is a quote.
		i++
		if doubled && i < len(s) && s[i] == '\'' {
			i++
			continue
		}
		j, ok := quoteContinue(s, i)
		if !ok {
			return i
		}
		i = j + 1
	}
}

// quoteContinue reports whether the string literal ending just before i
// continues: whitespace (and -- comments) including at least one newline,
// then a quote. It returns the offset of that quote.
func quoteContinue(s []byte, i int) (int, bool) {
	newline := false
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\f', '\v':
			i++
		case '\n', '\r':
			newline = true
			i++
		case '-':
			if i+1 >= len(s) || s[i+1] != '-' {
				return 0, false
			}
			i = lineEnd(s, i+2)
		case '\'':
			return i, newline
		default:
			return 0, false
		}
	}
	return 0, false
}

// quotedIdent returns the end of a quoted identifier whose body starts at i,
// or len(s) if it is unterminated.
func (l *lexer) quotedIdent(i int) int {
	s := l.s
	for {
		k := bytes.IndexByte(s[i:], '"')
		if k < 0 {
			return len(s)
		}
		// In the multibyte encodings the quote (0x22) is never a trail
		// byte, so no character-wise scan is needed.
		i += k + 1
		if i < len(s) && s[i] == '"' {
			i++
			continue
		}
		return i
	}
}

// dollar scans a token starting with '$' at i: a parameter ($1), a
// dollar-quoted string ($$...$$, $tag$...$tag$) or a lone '$'.
func (l *lexer) dollar(i int) tokKind {
	s := l.s
	j := i + 1
	if j < len(s) && byteClass[s[j]] == clsDigit {
		for j < len(s) && byteClass[s[j]] == clsDigit {
			j++
		}
		l.pos = j
		return tokParam
	}
	if j < len(s) && byteClass[s[j]] == clsIdent {
		for j < len(s) {
			c := s[j]
			if c >= 0x80 {
				j += charLen(s, j, l.enc)
				continue
			}
			if c == '$' || !identCont(c) {
				break
			}
			j++
		}
	}
	if j >= len(s) || s[j] != '$' {
		l.pos = i + 1
		return tokOther
	}
	tag := s[i : j+1]
	// '$' is never a trail byte, so a byte search finds the closing tag at
	// a character boundary in every supported encoding.
	if k := bytes.Index(s[j+1:], tag); k >= 0 {
		l.pos = j + 1 + k + len(tag)
	} else {
		l.pos = len(s)
	}
	return tokString
}
