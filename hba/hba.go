// Package hba parses client authentication rules in PostgreSQL's pg_hba.conf format and finds the rule for a connection.
//
// A file holds one rule per line:
//
//	local      DATABASE USER METHOD [OPTIONS]
//	host       DATABASE USER ADDRESS METHOD [OPTIONS]
//	hostssl    DATABASE USER ADDRESS METHOD [OPTIONS]
//	hostnossl  DATABASE USER ADDRESS METHOD [OPTIONS]
//
// ADDRESS is "all", a CIDR range ("10.0.0.0/8", "::1/128") or an IP
// address followed by a separate mask field ("127.0.0.1 255.255.255.255").
// DATABASE and USER are comma-separated lists. A "#" outside double quotes
// starts a comment, and a backslash as the very last character of a line
// joins the next line to it (as in PostgreSQL 16 and later; this happens
// before comments are removed, so a comment ending in a backslash swallows
// the next line, exactly as in PostgreSQL).
//
// Double quotes let a name contain spaces, commas and "#"; two double quotes
// inside a quoted part stand for one. A quoted keyword is a plain name:
// "all" (with the quotes) is the database or role called all.
//
// Keywords, connection types, methods and option names are case-sensitive,
// as in PostgreSQL. Features of pg_hba.conf that mux does not implement are
// refused with an error naming them rather than being silently ignored:
// other authentication methods (ident, gss, pam, ...), hostgssenc,
// samerole, "+group", "@file", regular expressions ("/..."),
// samehost, samenet, host names and unknown options.
package hba

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"

	"github.com/muxpg/mux/internal/ldap"
)

// ConnType is the kind of connection a rule applies to (its first field).
// The zero value is not a valid connection type.
type ConnType int

const (
	Local     ConnType = iota + 1 // "local": Unix-domain socket
	Host                          // "host": any TCP connection, TLS or not
	HostSSL                       // "hostssl": TCP connections that use TLS
	HostNoSSL                     // "hostnossl": TCP connections without TLS
)

// String returns the keyword of t as written in the file.
func (t ConnType) String() string {
	switch t {
	case Local:
		return "local"
	case Host:
		return "host"
	case HostSSL:
		return "hostssl"
	case HostNoSSL:
		return "hostnossl"
	}
	return fmt.Sprintf("ConnType(%d)", int(t))
}

// Method is an authentication method, as written in the file.
type Method string

// The authentication methods mux accepts.
const (
	Trust       Method = "trust"
	Reject      Method = "reject"
	MD5         Method = "md5"
	ScramSHA256 Method = "scram-sha-256"
	Password    Method = "password"
	Cert        Method = "cert" // hostssl only: the client certificate authenticates the user
	Peer        Method = "peer" // local only: the Unix socket peer's OS user name
	LDAP        Method = "ldap" // a bind to an LDAP server with the cleartext password
)

// Rule is one line of the file.
type Rule struct {
	// Line is the line number, starting at 1, on which the rule starts.
	Line int
	Type ConnType
	// Databases lists the database field in canonical form: the keywords
	// "all" and "sameuser" unquoted, and names unquoted unless they need
	// quotes to be read back, in which case they are double-quoted with
	// inner quotes doubled (a database called all is `"all"`, one called
	// "my db" is `"my db"`). Match understands both forms.
	Databases []string
	// Users lists the user field in the same form; the only keyword is "all".
	Users []string
	// Addr is the client address range. It is nil for local rules and for
	// the address "all". An IPv4 range has a 4-byte IP and mask; an IPv6
	// range (including one written as IPv4-mapped, ::ffff:a.b.c.d) has 16.
	Addr   *net.IPNet
	Method Method
	// Options holds the name=value options after the method. Only options
	// mux understands are accepted: map (peer, cert), clientcert
	// (hostssl; verify-ca or verify-full, only verify-full with cert) and
	// clientname (hostssl; CN or DN), and the ldap* options of PostgreSQL
	// (ldap). It is nil when there are none.
	Options map[string]string
	// LDAP holds the ldap* options, parsed and checked, of an ldap rule.
	LDAP *ldap.Options
}

// File is a parsed rules file.
type File struct {
	Rules []Rule
	Path  string // the name given to Parse, or the path given to Load
	// Maps are the user name maps (auth_ident_file) that the rules' map=
	// options name; nil when there are none. Parse leaves it nil: the
	// caller that reads both files sets it (config.Resolve).
	Maps *Ident
}

// ParseError describes one invalid line. Parse joins all of them with
// errors.Join; use errors.As, or Unwrap() []error on the joined error, to
// reach them.
type ParseError struct {
	File string
	Line int
	Msg  string
}

func (e *ParseError) Error() string { return fmt.Sprintf("%s:%d: %s", e.File, e.Line, e.Msg) }

// Load reads and parses the file at path.
func Load(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f, path)
}

// Parse reads rules from r. name is used in error messages and as the
// File's Path. If any line is invalid, Parse returns a nil File and an error
// joining one *ParseError ("name:line: message") per invalid line, so that
// a broken file is never half applied.
func Parse(r io.Reader, name string) (*File, error) {
	f := &File{Path: name}
	var errs []error
	err := logicalLines(r, func(start int, line string) {
		fields, err := splitFields(line)
		if err == nil && len(fields) == 0 {
			return
		}
		var rule Rule
		if err == nil {
			rule, err = parseRule(fields)
		}
		if err != nil {
			errs = append(errs, &ParseError{File: name, Line: start, Msg: err.Error()})
			return
		}
		rule.Line = start
		f.Rules = append(f.Rules, rule)
	})
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return f, nil
}

// token is one element of a field; quoted records whether any part of it
// was in double quotes, which makes keywords plain names.
type token struct {
	s      string
	quoted bool
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

// splitFields splits a logical line into whitespace-separated fields, each a
// comma-separated list of one or more tokens. Whitespace may follow a comma
// but not precede it, and list elements may not be empty.
func splitFields(line string) ([][]token, error) {
	var fields [][]token
	i := 0
	for {
		for i < len(line) && isBlank(line[i]) {
			i++
		}
		if i >= len(line) || line[i] == '#' {
			return fields, nil
		}
		if line[i] == ',' {
			return nil, errors.New(`unexpected "," at the start of a field (a comma must directly follow the list element before it)`)
		}
		var list []token
		for {
			t, next, comma, err := readToken(line, i)
			if err != nil {
				return nil, err
			}
			list = append(list, t)
			i = next
			if !comma {
				break
			}
			for i < len(line) && isBlank(line[i]) {
				i++
			}
			if i >= len(line) || line[i] == '#' {
				return nil, errors.New("list ends with a comma")
			}
			if line[i] == ',' {
				return nil, errors.New("empty element in a comma-separated list")
			}
		}
		fields = append(fields, list)
	}
}

// readToken reads the token starting at line[i], which is not blank, a comma
// or '#'. It returns the index after the token (after its comma, if any) and
// whether a comma ended it.
func readToken(line string, i int) (t token, next int, comma bool, err error) {
	var b strings.Builder
	inQuote := false
	for i < len(line) {
		c := line[i]
		if inQuote {
			if c == '"' {
				if i+1 < len(line) && line[i+1] == '"' {
					b.WriteByte('"')
					i += 2
					continue
				}
				inQuote = false
				i++
				continue
			}
			b.WriteByte(c)
			i++
			continue
		}
		switch {
		case isBlank(c) || c == '#':
			return token{b.String(), t.quoted}, i, false, nil
		case c == ',':
			return token{b.String(), t.quoted}, i + 1, true, nil
		case c == '"':
			inQuote, t.quoted = true, true
		default:
			b.WriteByte(c)
		}
		i++
	}
	if inQuote {
		return token{}, 0, false, errors.New("unterminated quoted string")
	}
	return token{b.String(), t.quoted}, i, false, nil
}

// single returns the only token of a field that may not be a list.
func single(field []token, what string) (token, error) {
	if len(field) != 1 {
		return token{}, fmt.Errorf("multiple values specified for %s", what)
	}
	return field[0], nil
}

// hint suggests the lowercase spelling of a keyword written in another case.
func hint(s string, keywords ...string) string {
	if l := strings.ToLower(s); l != s && slices.Contains(keywords, l) {
		return fmt.Sprintf(" (keywords are case-sensitive: write %q)", l)
	}
	return ""
}

func parseRule(fields [][]token) (Rule, error) {
	var r Rule
	t, err := single(fields[0], "connection type")
	if err != nil {
		return r, err
	}
	switch t.s {
	case "local":
		r.Type = Local
	case "host":
		r.Type = Host
	case "hostssl":
		r.Type = HostSSL
	case "hostnossl":
		r.Type = HostNoSSL
	case "hostgssenc", "hostnogssenc":
		return r, fmt.Errorf("connection type %q is not supported by mux (it has no GSSAPI encryption)", t.s)
	default:
		return r, fmt.Errorf("invalid connection type %q%s", t.s, hint(t.s, "local", "host", "hostssl", "hostnossl"))
	}

	if len(fields) < 2 {
		return r, errors.New("end-of-line before database specification")
	}
	for _, t := range fields[1] {
		name, err := parseDatabase(t)
		if err != nil {
			return r, err
		}
		r.Databases = append(r.Databases, name)
	}

	if len(fields) < 3 {
		return r, errors.New("end-of-line before role specification")
	}
	for _, t := range fields[2] {
		name, err := parseUser(t)
		if err != nil {
			return r, err
		}
		r.Users = append(r.Users, name)
	}

	rest := fields[3:]
	if r.Type != Local {
		if len(rest) == 0 {
			return r, errors.New("end-of-line before IP address specification")
		}
		r.Addr, rest, err = parseAddress(rest)
		if err != nil {
			return r, err
		}
	}

	if len(rest) == 0 {
		return r, errors.New("end-of-line before authentication method")
	}
	t, err = single(rest[0], "authentication method")
	if err != nil {
		return r, err
	}
	r.Method, err = parseMethod(t.s, r.Type)
	if err != nil {
		return r, err
	}

	for _, field := range rest[1:] {
		for _, t := range field {
			name, val, err := parseOption(t.s, &r)
			if err != nil {
				return r, err
			}
			if r.Options == nil {
				r.Options = make(map[string]string)
			}
			if _, dup := r.Options[name]; dup {
				return r, fmt.Errorf("authentication option %q specified more than once", name)
			}
			r.Options[name] = val
		}
	}
	if r.Method == LDAP {
		r.LDAP, err = ldapOptions(r.Options)
	}
	return r, err
}

// ldapOptions parses the ldap* options of an ldap rule.
func ldapOptions(opts map[string]string) (*ldap.Options, error) {
	m := map[string]string{}
	for k, v := range opts {
		if slices.Contains(ldap.OptionNames, k) {
			m[k] = v
		}
	}
	return ldap.FromMap(m)
}

// Keywords that are quoted when a name spells them, so that formatting a
// rule and parsing it back gives the same rule.
var keywords = []string{"all", "sameuser", "samerole", "samegroup", "replication"}

func parseDatabase(t token) (string, error) {
	if t.quoted {
		if t.s == "" {
			return "", errors.New("empty database name")
		}
		return quoteName(t.s), nil
	}
	switch t.s {
	case "all", "sameuser", "replication":
		return t.s, nil
	case "samerole", "samegroup":
		return "", fmt.Errorf("database keyword %q is not supported by mux (it needs role membership); list the databases explicitly", t.s)
	}
	if err := refuseSpecial(t.s, "database"); err != nil {
		return "", err
	}
	return quoteName(t.s), nil
}

func parseUser(t token) (string, error) {
	if t.quoted {
		if t.s == "" {
			return "", errors.New("empty role name")
		}
		return quoteName(t.s), nil
	}
	if t.s == "all" {
		return t.s, nil
	}
	if strings.HasPrefix(t.s, "+") {
		return "", fmt.Errorf("group membership (%q) is not supported by mux; list the roles explicitly", t.s)
	}
	if err := refuseSpecial(t.s, "role"); err != nil {
		return "", err
	}
	return quoteName(t.s), nil
}

// refuseSpecial rejects the unquoted name forms PostgreSQL gives a meaning
// that mux does not implement.
func refuseSpecial(s, what string) error {
	switch s[0] {
	case '@':
		return fmt.Errorf("including %s names from a file (%q) is not supported by mux", what, s)
	case '/':
		return fmt.Errorf("regular expressions in %s names (%q) are not supported by mux", what, s)
	}
	return nil
}

// quoteName returns s as written in canonical form: bare when it reads back
// as the same name, double-quoted otherwise.
func quoteName(s string) string {
	if needsQuote(s) || slices.Contains(keywords, s) || strings.HasPrefix(s, "+") ||
		strings.HasPrefix(s, "@") || strings.HasPrefix(s, "/") {
		return quote(s)
	}
	return s
}

func needsQuote(s string) bool {
	return s == "" || strings.ContainsAny(s, " \t\r\n,#\"") || strings.HasSuffix(s, `\`)
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

// unquoteName reverses quoteName. A malformed entry is returned unchanged.
func unquoteName(s string) string {
	if len(s) < 2 || s[0] != '"' || s[len(s)-1] != '"' {
		return s
	}
	return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
}

// parseAddress parses the address field and, for an address without a
// prefix length, the mask field after it. It returns the fields left over.
func parseAddress(fields [][]token) (*net.IPNet, [][]token, error) {
	t, err := single(fields[0], "host address")
	if err != nil {
		return nil, nil, err
	}
	s := t.s
	rest := fields[1:]
	if !t.quoted {
		switch s {
		case "all":
			return nil, rest, nil
		case "samehost", "samenet":
			return nil, nil, fmt.Errorf("address keyword %q is not supported by mux; write the address ranges explicitly", s)
		}
	}
	if s == "" {
		return nil, nil, errors.New("empty host address")
	}
	if strings.Contains(s, "%") {
		return nil, nil, fmt.Errorf("invalid IP address %q: zones are not supported", s)
	}
	if addr, bits, ok := strings.Cut(s, "/"); ok {
		if _, err := netip.ParseAddr(addr); err != nil {
			return nil, nil, fmt.Errorf("invalid CIDR address %q: bad IP address", s)
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, nil, fmt.Errorf("invalid CIDR mask in address %q: %q is not a prefix length", s, bits)
		}
		return prefixNet(p), rest, nil
	}
	addr, err := netip.ParseAddr(s)
	if err != nil {
		if strings.Trim(s, "0123456789.") == "" || strings.Contains(s, ":") {
			return nil, nil, fmt.Errorf("invalid IP address %q", s)
		}
		return nil, nil, fmt.Errorf("host names are not supported by mux (%q): write an IP address or CIDR range", s)
	}
	if len(rest) == 0 {
		return nil, nil, errors.New("end-of-line before netmask specification")
	}
	mt, err := single(rest[0], "netmask")
	if err != nil {
		return nil, nil, err
	}
	mask, err := netip.ParseAddr(mt.s)
	if err != nil || strings.Contains(mt.s, "%") {
		return nil, nil, fmt.Errorf("invalid IP mask %q after address %q (write %q for a single host, or put the mask length after a slash)", mt.s, s, s+"/"+fmt.Sprint(addr.BitLen()))
	}
	if mask.Is4() != addr.Is4() {
		return nil, nil, fmt.Errorf("IP address %q and mask %q do not match (one is IPv4, the other IPv6)", s, mt.s)
	}
	ones, bits := net.IPMask(mask.AsSlice()).Size()
	if bits == 0 {
		return nil, nil, fmt.Errorf("invalid IP mask %q: the mask bits must be contiguous", mt.s)
	}
	return prefixNet(netip.PrefixFrom(addr, ones)), rest[1:], nil
}

// prefixNet converts p to a *net.IPNet holding the network address (host
// bits cleared): 4 bytes for IPv4, 16 for IPv6.
func prefixNet(p netip.Prefix) *net.IPNet {
	p = p.Masked()
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func parseMethod(s string, typ ConnType) (Method, error) {
	m := Method(s)
	switch m {
	case Trust, Reject, MD5, ScramSHA256, Password, LDAP:
	case Peer:
		if typ != Local {
			return "", errors.New(`authentication method "peer" is only supported on local connections`)
		}
	case Cert:
		if typ != HostSSL {
			return "", errors.New(`authentication method "cert" is only supported on hostssl connections`)
		}
	case "ident", "gss", "sspi", "pam", "bsd", "radius", "oauth":
		return "", fmt.Errorf("authentication method %q is not supported by mux", s)
	default:
		return "", fmt.Errorf("invalid authentication method %q%s", s, hint(s,
			string(Trust), string(Reject), string(MD5), string(ScramSHA256), string(Password), string(Cert), string(Peer), string(LDAP)))
	}
	return m, nil
}

// parseOption parses and checks one name=value option of rule r.
func parseOption(s string, r *Rule) (name, val string, err error) {
	name, val, ok := strings.Cut(s, "=")
	if !ok {
		return "", "", fmt.Errorf("authentication option not in name=value format: %q", s)
	}
	if name == "" {
		return "", "", fmt.Errorf("authentication option without a name: %q", s)
	}
	if val == "" {
		return "", "", fmt.Errorf("authentication option %q has an empty value", name)
	}
	switch name {
	case "map":
		if r.Method != Peer && r.Method != Cert {
			return "", "", errors.New(`authentication option "map" is only valid for authentication methods peer and cert`)
		}
	case "clientcert":
		if r.Type != HostSSL {
			return "", "", errors.New(`authentication option "clientcert" can only be configured for "hostssl" rows`)
		}
		switch val {
		case "verify-full":
		case "verify-ca":
			if r.Method == Cert {
				return "", "", errors.New(`clientcert only accepts "verify-full" when using "cert" authentication`)
			}
		default:
			return "", "", fmt.Errorf("invalid value for clientcert: %q (want verify-ca or verify-full)", val)
		}
	case "clientname":
		if r.Type != HostSSL {
			return "", "", errors.New(`authentication option "clientname" can only be configured for "hostssl" rows`)
		}
		if val != "CN" && val != "DN" {
			return "", "", fmt.Errorf("invalid value for clientname: %q (want CN or DN)", val)
		}
	default:
		if slices.Contains(ldap.OptionNames, name) {
			if r.Method != LDAP {
				return "", "", fmt.Errorf("authentication option %q is only valid for authentication method ldap", name)
			}
			break
		}
		return "", "", fmt.Errorf("unrecognized authentication option name: %q", name)
	}
	return name, val, nil
}
