package ldap

import (
	"errors"
	"fmt"
)

// BER tags (RFC 4511 section 5.1: LDAP uses a subset of BER; the tag's
// class and constructed bit are in the byte itself, and mux needs no tag
// number over 30).
const (
	tagBoolean     = 0x01
	tagInteger     = 0x02
	tagOctetString = 0x04
	tagEnumerated  = 0x0a
	tagSequence    = 0x30
	tagSet         = 0x31

	classApplication = 0x40
	classContext     = 0x80
	constructed      = 0x20
)

// Application tags of the protocol operations mux sends or reads
// (RFC 4511 section 4.2 onwards).
const (
	opBindRequest       = classApplication | constructed | 0
	opBindResponse      = classApplication | constructed | 1
	opUnbindRequest     = classApplication | 2
	opSearchRequest     = classApplication | constructed | 3
	opSearchResultEntry = classApplication | constructed | 4
	opSearchResultDone  = classApplication | constructed | 5
	opSearchResultRef   = classApplication | constructed | 19
	opExtendedRequest   = classApplication | constructed | 23
	opExtendedResponse  = classApplication | constructed | 24
)

// maxMessageLen bounds one message from the server. mux asks for one
// attribute of at most a few entries; anything larger is refused before
// it is read.
const maxMessageLen = 256 << 10

// errMalformed is what every decoding failure wraps.
var errMalformed = errors.New("malformed LDAP message")

// appendTLV appends one element with tag and contents.
func appendTLV(b []byte, tag byte, contents []byte) []byte {
	b = append(b, tag)
	b = appendLength(b, len(contents))
	return append(b, contents...)
}

func appendLength(b []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n <= 0xff:
		return append(b, 0x81, byte(n))
	case n <= 0xffff:
		return append(b, 0x82, byte(n>>8), byte(n))
	case n <= 0xffffff:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// appendInt appends an INTEGER or ENUMERATED (tag) in the fewest bytes.
func appendInt(b []byte, tag byte, v int64) []byte {
	var buf [8]byte
	n := 8
	for {
		n--
		buf[n] = byte(v)
		v >>= 8
		// Stop once the rest is sign extension of the byte just written.
		if (v == 0 && buf[n]&0x80 == 0) || (v == -1 && buf[n]&0x80 != 0) || n == 0 {
			break
		}
	}
	return appendTLV(b, tag, buf[n:])
}

func appendString(b []byte, tag byte, s string) []byte {
	b = append(b, tag)
	b = appendLength(b, len(s))
	return append(b, s...)
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, tagBoolean, 1, 0xff)
	}
	return append(b, tagBoolean, 1, 0)
}

// element is one decoded BER element; body aliases the input.
type element struct {
	tag  byte
	body []byte
}

// readElement splits the first element off b.
func readElement(b []byte) (element, []byte, error) {
	if len(b) < 2 {
		return element{}, nil, fmt.Errorf("%w: truncated element", errMalformed)
	}
	tag := b[0]
	if tag&0x1f == 0x1f {
		return element{}, nil, fmt.Errorf("%w: multi-byte tag", errMalformed)
	}
	n, hdr, err := decodeLength(b[1:])
	if err != nil {
		return element{}, nil, err
	}
	rest := b[1+hdr:]
	if n > len(rest) {
		return element{}, nil, fmt.Errorf("%w: element of %d bytes has %d", errMalformed, n, len(rest))
	}
	return element{tag: tag, body: rest[:n]}, rest[n:], nil
}

// decodeLength reads a definite length (BER's indefinite form is not
// allowed in LDAP, RFC 4511 section 5.1) and returns it with the bytes
// it took.
func decodeLength(b []byte) (n, used int, err error) {
	if len(b) == 0 {
		return 0, 0, fmt.Errorf("%w: missing length", errMalformed)
	}
	if b[0] < 0x80 {
		return int(b[0]), 1, nil
	}
	k := int(b[0] & 0x7f)
	if k == 0 || k > 4 {
		return 0, 0, fmt.Errorf("%w: unsupported length form 0x%02x", errMalformed, b[0])
	}
	if len(b) < 1+k {
		return 0, 0, fmt.Errorf("%w: truncated length", errMalformed)
	}
	for _, c := range b[1 : 1+k] {
		n = n<<8 | int(c)
	}
	if n > maxMessageLen {
		return 0, 0, fmt.Errorf("%w: length %d over %d", errMalformed, n, maxMessageLen)
	}
	return n, 1 + k, nil
}

// expect reads the first element of b, which must have tag.
func expect(b []byte, tag byte, what string) (element, []byte, error) {
	e, rest, err := readElement(b)
	if err != nil {
		return e, nil, err
	}
	if e.tag != tag {
		return e, nil, fmt.Errorf("%w: %s has tag 0x%02x, want 0x%02x", errMalformed, what, e.tag, tag)
	}
	return e, rest, nil
}

// parseInt decodes an INTEGER or ENUMERATED body of at most 4 bytes.
func parseInt(body []byte) (int64, error) {
	if len(body) == 0 || len(body) > 4 {
		return 0, fmt.Errorf("%w: integer of %d bytes", errMalformed, len(body))
	}
	v := int64(int8(body[0])) // sign
	for _, c := range body[1:] {
		v = v<<8 | int64(c)
	}
	return v, nil
}
