package ldap

import (
	"fmt"
	"strings"
)

// Filter choices (RFC 4511 section 4.5.1.7).
const (
	filterAnd       = classContext | constructed | 0
	filterOr        = classContext | constructed | 1
	filterNot       = classContext | constructed | 2
	filterEqual     = classContext | constructed | 3
	filterSubstring = classContext | constructed | 4
	filterGreater   = classContext | constructed | 5
	filterLess      = classContext | constructed | 6
	filterPresent   = classContext | 7
	filterApprox    = classContext | constructed | 8
)

// maxFilterDepth bounds the nesting of &, | and !.
const maxFilterDepth = 32

// encodeFilter turns a filter in RFC 4515's string form ("(uid=alice)",
// "(&(objectClass=person)(|(uid=a*)(mail=*@x)))") into its BER form. As
// libldap does, a filter without the outer parentheses is accepted.
// Extensible matches (":=") are not supported.
func encodeFilter(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, "(") {
		s = "(" + s + ")"
	}
	p := filterParser{s: s}
	out, err := p.filter(0)
	if err != nil {
		return nil, err
	}
	if p.i != len(s) {
		return nil, fmt.Errorf("invalid LDAP filter %q: unexpected %q after the filter", s, s[p.i:])
	}
	return out, nil
}

type filterParser struct {
	s string
	i int
}

func (p *filterParser) errorf(format string, args ...any) error {
	return fmt.Errorf("invalid LDAP filter %q: %s", p.s, fmt.Sprintf(format, args...))
}

// filter reads "(" filtercomp ")".
func (p *filterParser) filter(depth int) ([]byte, error) {
	if depth > maxFilterDepth {
		return nil, p.errorf("nested more than %d deep", maxFilterDepth)
	}
	if p.i >= len(p.s) || p.s[p.i] != '(' {
		return nil, p.errorf("expected ( at offset %d", p.i)
	}
	p.i++
	if p.i >= len(p.s) {
		return nil, p.errorf("unexpected end")
	}
	var out []byte
	var err error
	switch p.s[p.i] {
	case '&':
		p.i++
		out, err = p.list(filterAnd, depth)
	case '|':
		p.i++
		out, err = p.list(filterOr, depth)
	case '!':
		p.i++
		var inner []byte
		if inner, err = p.filter(depth + 1); err == nil {
			out = appendTLV(nil, filterNot, inner)
		}
	default:
		out, err = p.item()
	}
	if err != nil {
		return nil, err
	}
	if p.i >= len(p.s) || p.s[p.i] != ')' {
		return nil, p.errorf("expected ) at offset %d", p.i)
	}
	p.i++
	return out, nil
}

// list reads one or more filters up to the closing parenthesis.
func (p *filterParser) list(tag byte, depth int) ([]byte, error) {
	var body []byte
	for p.i < len(p.s) && p.s[p.i] == '(' {
		f, err := p.filter(depth + 1)
		if err != nil {
			return nil, err
		}
		body = append(body, f...)
	}
	if len(body) == 0 {
		return nil, p.errorf("empty filter list at offset %d", p.i)
	}
	return appendTLV(nil, tag, body), nil
}

// item reads attr op value up to the closing parenthesis.
func (p *filterParser) item() ([]byte, error) {
	end := strings.IndexByte(p.s[p.i:], ')')
	if end < 0 {
		return nil, p.errorf("missing )")
	}
	text := p.s[p.i : p.i+end]
	p.i += end
	eq := strings.IndexByte(text, '=')
	if eq <= 0 {
		return nil, p.errorf("%q is not attribute=value", text)
	}
	attr, value := text[:eq], text[eq+1:]
	tag := byte(filterEqual)
	switch attr[len(attr)-1] {
	case '~':
		tag, attr = filterApprox, attr[:len(attr)-1]
	case '>':
		tag, attr = filterGreater, attr[:len(attr)-1]
	case '<':
		tag, attr = filterLess, attr[:len(attr)-1]
	case ':':
		return nil, p.errorf("extensible matches are not supported")
	}
	if attr == "" || strings.ContainsAny(attr, "()*\\ ") {
		return nil, p.errorf("invalid attribute %q", attr)
	}
	if tag == filterEqual && value == "*" {
		return appendString(nil, filterPresent, attr), nil
	}
	if tag == filterEqual && strings.Contains(value, "*") {
		return p.substring(attr, value)
	}
	v, err := p.unescape(value)
	if err != nil {
		return nil, err
	}
	body := appendString(nil, tagOctetString, attr)
	body = appendString(body, tagOctetString, v)
	return appendTLV(nil, tag, body), nil
}

// substring encodes attr=initial*any*final.
func (p *filterParser) substring(attr, value string) ([]byte, error) {
	parts := strings.Split(value, "*")
	var subs []byte
	for i, part := range parts {
		if part == "" {
			if i != 0 && i != len(parts)-1 {
				return nil, p.errorf("** in a substring filter")
			}
			continue
		}
		v, err := p.unescape(part)
		if err != nil {
			return nil, err
		}
		var tag byte = classContext | 1 // any
		switch i {
		case 0:
			tag = classContext | 0 // initial
		case len(parts) - 1:
			tag = classContext | 2 // final
		}
		subs = appendString(subs, tag, v)
	}
	body := appendString(nil, tagOctetString, attr)
	body = appendTLV(body, tagSequence, subs)
	return appendTLV(nil, filterSubstring, body), nil
}

// unescape decodes RFC 4515's \XX escapes; a ( ) or * must be escaped.
func (p *filterParser) unescape(v string) (string, error) {
	if strings.ContainsAny(v, "()*") {
		return "", p.errorf("unescaped special character in value %q", v)
	}
	if !strings.Contains(v, `\`) {
		return v, nil
	}
	var b strings.Builder
	for i := 0; i < len(v); i++ {
		if v[i] != '\\' {
			b.WriteByte(v[i])
			continue
		}
		if i+2 >= len(v) {
			return "", p.errorf("truncated escape in value %q", v)
		}
		hi, ok1 := unhex(v[i+1])
		lo, ok2 := unhex(v[i+2])
		if !ok1 || !ok2 {
			return "", p.errorf("invalid escape in value %q", v)
		}
		b.WriteByte(hi<<4 | lo)
		i += 2
	}
	return b.String(), nil
}

func unhex(c byte) (byte, bool) {
	switch {
	case '0' <= c && c <= '9':
		return c - '0', true
	case 'a' <= c && c <= 'f':
		return c - 'a' + 10, true
	case 'A' <= c && c <= 'F':
		return c - 'A' + 10, true
	}
	return 0, false
}
