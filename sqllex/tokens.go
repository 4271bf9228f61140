package sqllex

// TokenKind is the kind of a token Tokens hands out.
type TokenKind uint8

// The token kinds.
const (
	TokWord        = TokenKind(tokWord)        // a bare identifier or keyword
	TokQuotedIdent = TokenKind(tokQuotedIdent) // "ident" or U&"ident"
	TokString      = TokenKind(tokString)      // a string or dollar-quoted literal
	TokParam       = TokenKind(tokParam)       // $1
	TokNumber      = TokenKind(tokNumber)      // digits
	TokSemicolon   = TokenKind(tokSemicolon)   // ;
	TokLParen      = TokenKind(tokLParen)      // (
	TokRParen      = TokenKind(tokRParen)      // )
	TokOther       = TokenKind(tokOther)       // any other single byte
)

// Token is one token of the input: sql[Start:End].
type Token struct {
	Kind       TokenKind
	Start, End int
}

// Tokens calls fn for each token of sql, in order, skipping whitespace
// and comments, until fn returns false. For callers that need more than
// a statement's leading words (Scan), such as telling a query that only
// reads from one that may write; like the rest of the package it
// allocates nothing.
func Tokens(sql []byte, opt Options, fn func(Token) bool) {
	l := lexer{s: sql, scs: opt.StandardConformingStrings, enc: opt.Encoding}
	for {
		kind, start := l.next()
		if kind == tokEOF || !fn(Token{Kind: TokenKind(kind), Start: start, End: l.pos}) {
			return
		}
	}
}

// EqualFold reports whether word equals upper, an upper-case ASCII word,
// ignoring ASCII case (as SQL folds keywords).
func EqualFold(word []byte, upper string) bool { return equalFoldASCII(word, upper) }
