// Package pgbouncerconf reads PgBouncer's pgbouncer.ini and auth_file and converts them to mux's configuration.
package pgbouncerconf

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/muxpg/mux/userlist"
)

// INI is a parsed pgbouncer.ini.
type INI struct {
	// Name is the file name given to ParseINI. Convert names it in the
	// header of the generated configuration.
	Name string
	// Sections maps lower-cased section names ("pgbouncer", "databases",
	// "users", ...) to their entries in file order, with %include'd files
	// read in place. Setting names are lower-cased; the keys of [databases]
	// and [users] are database and user names and keep their case. A key
	// that appears twice is listed twice; the later one wins, as in
	// PgBouncer.
	Sections map[string][]KV
}

// KV is one "key = value" line.
type KV struct {
	// Key is unquoted: 'name' and "name" (with "" for a double quote) are
	// read as name.
	Key, Value string
	// Line is the 1-based line number in File.
	Line int
	// File is the name of the file holding the line: the name given to
	// ParseINI, or the path of an included file.
	File string
}

// Get returns the last entry for key in section; both are matched without
// regard to case. Database and user names are case-sensitive in PgBouncer,
// so look those up in Sections directly.
func (ini *INI) Get(section, key string) (KV, bool) {
	entries := ini.Sections[strings.ToLower(section)]
	for i := len(entries) - 1; i >= 0; i-- {
		if strings.EqualFold(entries[i].Key, key) {
			return entries[i], true
		}
	}
	return KV{}, false
}

const (
	// maxIncludeDepth is how deeply %include may nest, as in PgBouncer.
	maxIncludeDepth = 10
	// maxFileSize bounds every file read, so that a stray %include of a
	// huge file fails instead of exhausting memory.
	maxFileSize = 16 << 20
)

// ParseINI reads pgbouncer.ini syntax: [section] headers, key = value lines
// (the value runs to the end of the line, without inline comments), lines
// starting with ; or # as comments, and "%include FILE" directives. An
// included FILE that is not absolute is taken relative to the directory of
// the file that includes it (name, for the top-level file; the current
// directory if name is empty); including a file that is already being read
// is an error. Section names and setting names are case-insensitive and
// stored lower-cased; see INI. name is also used in error messages.
func ParseINI(r io.Reader, name string) (*INI, error) {
	data, err := readLimited(r)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", displayName(name), err)
	}
	return parseINI(data, name, readRegularFile)
}

// parseINI parses data, reading included files with open.
func parseINI(data []byte, name string, open func(path string) ([]byte, error)) (*INI, error) {
	p := &iniParser{
		ini:  &INI{Name: name, Sections: map[string][]KV{}},
		open: open,
	}
	if name != "" {
		p.stack = append(p.stack, includeKey(name))
	}
	if err := p.parse(data, name, 0); err != nil {
		return nil, err
	}
	return p.ini, nil
}

type iniParser struct {
	ini     *INI
	open    func(path string) ([]byte, error)
	section string   // current section; "" before the first header
	stack   []string // files being read, for loop detection
}

func (p *iniParser) parse(data []byte, file string, depth int) error {
	for i, line := range strings.Split(string(data), "\n") {
		lineno := i + 1
		errorf := func(format string, args ...any) error {
			return fmt.Errorf("%s:%d: %s", displayName(file), lineno, fmt.Sprintf(format, args...))
		}
		line = strings.TrimLeft(line, " \t\r\v\f")
		line = strings.TrimRight(line, " \t\r\v\f")
		switch {
		case line == "", line[0] == ';', line[0] == '#':
			continue
		case strings.HasPrefix(line, "%include") && (len(line) == 8 || line[8] == ' ' || line[8] == '\t'):
			target := strings.TrimSpace(line[8:])
			if target == "" {
				return errorf("%%include needs a file name")
			}
			if err := p.include(file, target, depth); err != nil {
				return errorf("%v", err)
			}
		case line[0] == '[':
			end := strings.IndexByte(line, ']')
			if end < 0 {
				return errorf("section header without closing ]")
			}
			section := strings.ToLower(strings.TrimSpace(line[1:end]))
			if section == "" {
				return errorf("empty section name")
			}
			if rest := strings.TrimSpace(line[end+1:]); rest != "" && rest[0] != ';' && rest[0] != '#' {
				return errorf("unexpected %q after section header", rest)
			}
			p.section = section
			if _, ok := p.ini.Sections[section]; !ok {
				p.ini.Sections[section] = nil
			}
		default:
			key, value, err := splitKeyValue(line)
			if err != nil {
				return errorf("%v", err)
			}
			if p.section == "" {
				return errorf("%q is outside any [section]", key)
			}
			if p.section != "databases" && p.section != "users" {
				key = strings.ToLower(key)
			}
			p.ini.Sections[p.section] = append(p.ini.Sections[p.section],
				KV{Key: key, Value: value, Line: lineno, File: file})
		}
	}
	return nil
}

func (p *iniParser) include(from, target string, depth int) error {
	if depth+1 > maxIncludeDepth {
		return fmt.Errorf("%%include %s: nested more than %d deep", target, maxIncludeDepth)
	}
	path := target
	if !filepath.IsAbs(path) {
		dir := "."
		if from != "" {
			dir = filepath.Dir(from)
		}
		path = filepath.Join(dir, path)
	}
	key := includeKey(path)
	for _, k := range p.stack {
		if k == key {
			return fmt.Errorf("%%include %s: %s includes itself", target, path)
		}
	}
	data, err := p.open(path)
	if err != nil {
		return fmt.Errorf("%%include %s: %w", target, err)
	}
	p.stack = append(p.stack, key)
	defer func() { p.stack = p.stack[:len(p.stack)-1] }()
	return p.parse(data, path, depth+1)
}

// splitKeyValue splits `key = value`. A key is either quoted ('...' without
// escapes, or "..." with "" for a double quote) or runs up to the first
// blank or '='.
func splitKeyValue(line string) (key, value string, err error) {
	var rest string
	switch line[0] {
	case '"':
		if key, rest, err = userlist.QuotedField(line); err != nil {
			return "", "", fmt.Errorf("quoted name: %w", err)
		}
	case '\'':
		j := strings.IndexByte(line[1:], '\'')
		if j < 0 {
			return "", "", errors.New("unterminated quoted name")
		}
		key, rest = line[1:1+j], line[2+j:]
	default:
		j := strings.IndexAny(line, "= \t")
		if j < 0 {
			return "", "", fmt.Errorf("%q is not a key = value line", line)
		}
		key, rest = line[:j], line[j:]
	}
	if key == "" {
		return "", "", errors.New("empty name before '='")
	}
	rest = strings.TrimLeft(rest, " \t")
	if rest == "" || rest[0] != '=' {
		return "", "", fmt.Errorf("expected '=' after %q", key)
	}
	return key, strings.TrimLeft(rest[1:], " \t"), nil
}

// includeKey identifies a file for %include loop detection.
func includeKey(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return filepath.Clean(path)
}

func displayName(name string) string {
	if name == "" {
		return "<input>"
	}
	return name
}

func readLimited(r io.Reader) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxFileSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > maxFileSize {
		return nil, fmt.Errorf("larger than %d MiB", maxFileSize>>20)
	}
	return data, nil
}

// readRegularFile reads a regular file of at most maxFileSize bytes; devices
// and directories are refused.
func readRegularFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, &fs.PathError{Op: "read", Path: path, Err: errors.New("not a regular file")}
	}
	data, err := readLimited(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return data, nil
}
