package hba

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"slices"
	"strings"
)

// Ident is a user name map file in PostgreSQL's pg_ident.conf format
// (auth_ident_file): the maps that the map= option of a cert or peer rule
// names. A file holds one mapping per line:
//
//	MAPNAME SYSTEM-USERNAME PG-USERNAME
//
// A line lets a client that authenticated as SYSTEM-USERNAME (the CN of
// its certificate, or its operating-system user on the Unix socket) log in
// as PG-USERNAME. Quoting, comments and backslash continuations are as in
// the rules file. As in PostgreSQL, a SYSTEM-USERNAME starting with "/" is
// a regular expression (Go's RE2 syntax, which agrees with PostgreSQL's for
// the usual patterns; it matches anywhere unless anchored with ^ and $),
// and a "\1" in PG-USERNAME stands for what its first parenthesized
// subexpression matched. PG-USERNAME is a name, the keyword all (any user),
// or, starting with "/", a regular expression the requested user must
// match. mux refuses what it cannot apply: "+group" (role membership is
// Postgres's to know), include lines, and a "\1" without a subexpression to
// take it from.
type Ident struct {
	Lines []IdentLine
	Path  string // the name given to ParseIdent, or the path given to LoadIdent
}

// IdentLine is one line of a user name map file.
type IdentLine struct {
	// Line is the line number, starting at 1, on which the mapping starts.
	Line int
	Map  string
	// System and User are SYSTEM-USERNAME and PG-USERNAME as read, quotes
	// removed; UserAll is set for an unquoted all.
	System, User string
	UserAll      bool
	// systemRE and userRE are the compiled regular expressions of a
	// System or User starting with "/"; nil otherwise.
	systemRE, userRE *regexp.Regexp
}

// LoadIdent reads and parses the user name map file at path.
func LoadIdent(path string) (*Ident, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ParseIdent(f, path)
}

// ParseIdent reads mappings from r. name is used in error messages and as
// the Ident's Path. As with Parse, any invalid line makes it return a nil
// Ident and an error joining one *ParseError per invalid line.
func ParseIdent(r io.Reader, name string) (*Ident, error) {
	id := &Ident{Path: name}
	var errs []error
	err := logicalLines(r, func(start int, line string) {
		fields, err := splitFields(line)
		if err == nil && len(fields) == 0 {
			return
		}
		var l IdentLine
		if err == nil {
			l, err = parseIdentLine(fields)
		}
		if err != nil {
			errs = append(errs, &ParseError{File: name, Line: start, Msg: err.Error()})
			return
		}
		l.Line = start
		id.Lines = append(id.Lines, l)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return id, nil
}

// logicalLines calls fn with each logical line of r (backslash
// continuations joined, line ends removed) and the number of the line on
// which it starts; Parse and ParseIdent read their files through it.
func logicalLines(r io.Reader, fn func(start int, line string)) error {
	br := bufio.NewReader(r)
	lineNo := 0
	for done := false; !done; {
		start := lineNo + 1
		var line strings.Builder
		read := false
		for {
			s, err := br.ReadString('\n')
			if err != nil && err != io.EOF {
				return err
			}
			if err == io.EOF {
				done = true
				if s == "" {
					break
				}
			}
			read = true
			lineNo++
			s = strings.TrimSuffix(strings.TrimSuffix(s, "\n"), "\r")
			if cont, ok := strings.CutSuffix(s, `\`); ok && !done {
				line.WriteString(cont)
				continue
			} else if ok {
				s = cont
			}
			line.WriteString(s)
			break
		}
		if read {
			fn(start, line.String())
		}
	}
	return nil
}

// includes are the keywords of PostgreSQL's include lines (a line of two
// fields starting with one of them).
var includes = []string{"include", "include_if_exists", "include_dir"}

func parseIdentLine(fields [][]token) (IdentLine, error) {
	var l IdentLine
	if t := fields[0]; len(fields) == 2 && len(t) == 1 && slices.Contains(includes, t[0].s) {
		return l, fmt.Errorf("%q lines are not supported by mux: write the mappings into this file", t[0].s)
	}
	if len(fields) < 3 {
		return l, errors.New("missing entry at end of line (want MAPNAME SYSTEM-USERNAME PG-USERNAME)")
	}
	if len(fields) > 3 {
		return l, errors.New("extra field after PG-USERNAME (want MAPNAME SYSTEM-USERNAME PG-USERNAME)")
	}
	var vals [3]token
	for i, f := range fields {
		if len(f) != 1 {
			return l, errors.New("multiple values in ident field")
		}
		vals[i] = f[0]
	}
	if vals[0].s == "" || vals[1].s == "" || vals[2].s == "" {
		return l, errors.New("empty field")
	}
	l.Map, l.System, l.User = vals[0].s, vals[1].s, vals[2].s
	var err error
	if l.systemRE, err = compileUserRE(l.System); err != nil {
		return l, err
	}
	switch {
	case !vals[2].quoted && l.User == "all":
		l.UserAll = true
	case strings.HasPrefix(l.User, "+") && !vals[2].quoted:
		return l, fmt.Errorf("group membership (%q) is not supported by mux; list the roles explicitly", l.User)
	case strings.HasPrefix(l.User, "/"):
		if l.userRE, err = compileUserRE(l.User); err != nil {
			return l, err
		}
	case strings.Contains(l.User, `\1`):
		if l.systemRE == nil {
			return l, fmt.Errorf(`%q: \1 needs SYSTEM-USERNAME to be a regular expression (starting with "/")`, l.User)
		}
		if l.systemRE.NumSubexp() == 0 {
			return l, fmt.Errorf(`regular expression %q has no subexpressions as requested by backreference in %q`, l.System[1:], l.User)
		}
	}
	return l, nil
}

// compileUserRE compiles a user name field starting with "/" (PostgreSQL
// also takes a quoted one as a regular expression); it returns nil for
// other names.
func compileUserRE(s string) (*regexp.Regexp, error) {
	if !strings.HasPrefix(s, "/") {
		return nil, nil
	}
	re, err := regexp.Compile(s[1:])
	if err != nil {
		return nil, fmt.Errorf("invalid regular expression %q: %v", s[1:], err)
	}
	return re, nil
}

// Has reports whether some line of id belongs to the map called name.
func (id *Ident) Has(name string) bool {
	if id == nil {
		return false
	}
	for i := range id.Lines {
		if id.Lines[i].Map == name {
			return true
		}
	}
	return false
}

// Allows returns the first line of the map called name that lets a client
// authenticated as system log in as user, or nil: no line does (Postgres
// refuses such a login: "no match in usermap"). As in PostgreSQL, a line
// whose \1 stands for a group that did not take part in the match ends
// the search with no match.
func (id *Ident) Allows(name, system, user string) *IdentLine {
	if id == nil {
		return nil
	}
	for i := range id.Lines {
		if l := &id.Lines[i]; l.Map == name {
			switch l.allows(system, user) {
			case matched:
				return l
			case failed:
				return nil
			}
		}
	}
	return nil
}

// The outcomes of one line for a login.
const (
	unmatched = iota
	matched
	failed // \1 with nothing to put there
)

func (l *IdentLine) allows(system, user string) int {
	want := l.User
	if l.systemRE != nil {
		m := l.systemRE.FindStringSubmatchIndex(system)
		if m == nil {
			return unmatched
		}
		// Only a plain name takes the substitution, and the result is a
		// plain name (never all or a pattern), as in PostgreSQL.
		if !l.UserAll && l.userRE == nil && strings.Contains(want, `\1`) {
			if len(m) < 4 || m[2] < 0 {
				return failed
			}
			want = strings.Replace(want, `\1`, system[m[2]:m[3]], 1)
			return outcome(want == user)
		}
	} else if l.System != system {
		return unmatched
	}
	switch {
	case l.UserAll:
		return matched
	case l.userRE != nil:
		return outcome(l.userRE.MatchString(user))
	}
	return outcome(want == user)
}

func outcome(ok bool) int {
	if ok {
		return matched
	}
	return unmatched
}

// String formats the mappings as a user name map file that ParseIdent
// reads back as the same mappings, one per line.
func (id *Ident) String() string {
	var b strings.Builder
	for _, l := range id.Lines {
		user := quoteIdent(l.User)
		if l.UserAll {
			user = "all"
		}
		fmt.Fprintf(&b, "%s %s %s\n", quoteIdent(l.Map), quoteIdent(l.System), user)
	}
	return b.String()
}

// quoteIdent quotes a field that would not read back as itself: one with
// blanks, commas, quotes or "#", the keyword all, or a group.
func quoteIdent(s string) string {
	if needsQuote(s) || s == "all" || strings.HasPrefix(s, "+") {
		return quote(s)
	}
	return s
}
