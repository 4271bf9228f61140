package pgbouncerconf

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"
)

// The generated document is written by hand rather than with the toml
// encoder so that it can be grouped and commented. Values are rendered by
// the functions below; tests decode every generated document.

// tomlString renders s as a TOML basic string. s must be valid UTF-8.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\b':
			b.WriteString(`\b`)
		case '\t':
			b.WriteString(`\t`)
		case '\n':
			b.WriteString(`\n`)
		case '\f':
			b.WriteString(`\f`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

var bareKey = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

// tomlKey renders one part of a dotted key, quoting it unless it is a bare key.
func tomlKey(k string) string {
	if bareKey.MatchString(k) {
		return k
	}
	return tomlString(k)
}

func tomlStrings(list []string) string {
	parts := make([]string, len(list))
	for i, s := range list {
		parts[i] = tomlString(s)
	}
	return "[" + strings.Join(parts, ", ") + "]"
}

func tomlInt(n int64) string { return strconv.FormatInt(n, 10) }

func tomlBool(b bool) string { return strconv.FormatBool(b) }

// commentText makes s safe inside a TOML comment: control characters other
// than tab and invalid UTF-8 are replaced by '?'.
func commentText(s string) string {
	if utf8.ValidString(s) && !strings.ContainsFunc(s, isCommentControl) {
		return s
	}
	var b strings.Builder
	for i, r := range s {
		if (r == utf8.RuneError && !strings.HasPrefix(s[i:], "\uFFFD")) || isCommentControl(r) {
			b.WriteByte('?')
		} else {
			b.WriteRune(r)
		}
	}
	return b.String()
}

func isCommentControl(r rune) bool { return (r < 0x20 && r != '\t') || r == 0x7f }

// doc is the generated configuration before rendering.
type doc struct {
	header []string // comment lines at the top
	groups []*group // top-level settings, then tables
}

// group is a titled block of top-level settings (table == nil) or a table
// such as [databases.app].
type group struct {
	title   string   // banner for top-level groups
	table   []string // key path of a table, e.g. {"databases", "*"}
	comment []string // comment lines before the table header or first line
	lines   []setting
}

type setting struct {
	key, value string // value is rendered TOML
	comment    string // trailing comment; may be ""
	before     []string
}

// emptyBanner reports whether g is a banner with nothing under it, such as
// the one introducing the [databases] tables.
func (g *group) emptyBanner() bool {
	return g.table == nil && len(g.comment) == 0 && len(g.lines) == 0
}

func (d *doc) render() []byte {
	var b strings.Builder
	for _, h := range d.header {
		writeComment(&b, h)
	}
	for i, g := range d.groups {
		if i == 0 || !d.groups[i-1].emptyBanner() {
			b.WriteByte('\n')
		}
		if g.table == nil {
			writeComment(&b, strings.Repeat("-", 75))
			writeComment(&b, g.title)
			writeComment(&b, strings.Repeat("-", 75))
			b.WriteByte('\n')
		}
		for _, c := range g.comment {
			writeComment(&b, c)
		}
		if g.table != nil {
			parts := make([]string, len(g.table))
			for i, k := range g.table {
				parts[i] = tomlKey(k)
			}
			fmt.Fprintf(&b, "[%s]\n", strings.Join(parts, "."))
		}
		for _, s := range g.lines {
			for _, c := range s.before {
				writeComment(&b, c)
			}
			b.WriteString(tomlKey(s.key) + " = " + s.value)
			if s.comment != "" {
				b.WriteString("  # " + commentText(s.comment))
			}
			b.WriteByte('\n')
		}
	}
	return []byte(b.String())
}

func writeComment(b *strings.Builder, line string) {
	if line == "" {
		b.WriteString("#\n")
		return
	}
	b.WriteString("# " + commentText(line) + "\n")
}
