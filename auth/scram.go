package auth

import (
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

const (
	// MaxMessageLen bounds every SCRAM message mux parses, in either
	// direction. Real SCRAM-SHA-256 messages are tiny: libpq's
	// client-first-message is about 32 bytes, its client-final-message
	// about 110, and PostgreSQL's server messages are of the same order
	// (two 24-character nonces, a 24-character salt and a 44-character
	// proof or signature). 1 KiB leaves room for longer nonces, user names
	// and extensions while keeping hostile input cheap to reject.
	MaxMessageLen = 1024

	// MaxSCRAMIterations is the largest iteration count the client side
	// accepts from a server. The count sets PBKDF2's CPU cost before the
	// server has proven anything, so it is capped: 1,000,000 is 244 times
	// PostgreSQL's default of 4096 and already costs about a second of CPU
	// per login (10,000,000 measured over 11 s on a cloud core).
	MaxSCRAMIterations = 1_000_000

	// nonceLen is the number of random bytes in a nonce, as in libpq and
	// PostgreSQL (SCRAM_RAW_NONCE_LEN); base64 makes it 24 characters.
	nonceLen = 18

	mechanism = "SCRAM-SHA-256"
)

var (
	// ErrAuthFailed is returned when a password or SCRAM proof is wrong, or
	// the exchange otherwise fails verification. Some failures wrap it
	// with a detail, so test with errors.Is.
	ErrAuthFailed = errors.New("password authentication failed")

	errMalformed      = errors.New("malformed SCRAM message")
	errTooLong        = fmt.Errorf("%w: longer than %d bytes", errMalformed, MaxMessageLen)
	errState          = errors.New("SCRAM message out of order")
	errChannelBinding = errors.New("SCRAM channel binding is not supported (mechanism " + mechanism + " only)")
	errServerSig      = errors.New("invalid SCRAM server signature")

	clientKeyLabel = []byte("Client Key")
	serverKeyLabel = []byte("Server Key")

	b64 = base64.StdEncoding
)

func malformed(detail string) error {
	return fmt.Errorf("%w: %s", errMalformed, detail)
}

// saslPrep prepares a password for SCRAM as RFC 4013 (SASLprep) would,
// but only partly. For printable ASCII, the common case, SASLprep is the
// identity and the result is exact. Anything else (control characters,
// invalid UTF-8, any non-ASCII) is used as raw bytes: the RFC 4013
// mappings, NFKC normalisation and prohibited/bidirectional checks are
// not implemented. PostgreSQL also falls back to the raw password when
// SASLprep fails (invalid UTF-8, prohibited or control characters), so
// the results agree there; they can differ for a valid non-ASCII password
// that PostgreSQL's SASLprep would change, e.g. one with a non-ASCII space,
// a soft hyphen or a character NFKC rewrites.
//
// Both cases therefore come down to using the password unchanged.
func saslPrep(password string) string {
	return password
}

// saltedPassword is RFC 5802's Hi(password, salt, i) for SHA-256.
func saltedPassword(password string, salt []byte, iterations int) ([32]byte, error) {
	var out [32]byte
	k, err := pbkdf2.Key(sha256.New, password, salt, iterations, len(out))
	if err != nil {
		return out, err
	}
	copy(out[:], k)
	return out, nil
}

func hmacSHA256(key, msg []byte) [32]byte {
	var out [32]byte
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	m.Sum(out[:0])
	return out
}

func xor32(a, b [32]byte) [32]byte {
	var out [32]byte
	for i := range out {
		out[i] = a[i] ^ b[i]
	}
	return out
}

func makeNonce() string {
	var raw [nonceLen]byte
	rand.Read(raw[:])
	return b64.EncodeToString(raw[:])
}

// authMessage is RFC 5802's AuthMessage.
func authMessage(clientFirstBare, serverFirst, clientFinalNoProof string) []byte {
	b := make([]byte, 0, len(clientFirstBare)+len(serverFirst)+len(clientFinalNoProof)+2)
	b = append(b, clientFirstBare...)
	b = append(b, ',')
	b = append(b, serverFirst...)
	b = append(b, ',')
	b = append(b, clientFinalNoProof...)
	return b
}

// decodeBase64 decodes standard, padded base64, refusing anything outside
// the alphabet (encoding/base64 would silently skip CR and LF).
func decodeBase64(s string) ([]byte, bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '=') {
			return nil, false
		}
	}
	b, err := b64.DecodeString(s)
	return b, err == nil
}

func decodeKey(s string, dst *[32]byte) bool {
	if len(s) != b64.EncodedLen(len(dst)) {
		return false
	}
	b, ok := decodeBase64(s)
	if !ok || len(b) != len(dst) {
		return false
	}
	copy(dst[:], b)
	return true
}

// parseDecimal parses 1 or more ASCII digits (no sign) as a number no
// larger than limit.
func parseDecimal(s string, limit int) (int, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n > int64(limit) {
		return 0, false
	}
	return int(n), true
}

// checkMessage applies the checks common to every SCRAM message: bounded
// size, not empty, and no NUL (RFC 5802 forbids it in every value).
func checkMessage(msg []byte) error {
	switch {
	case len(msg) > MaxMessageLen:
		return errTooLong
	case len(msg) == 0:
		return malformed("empty message")
	case strings.IndexByte(string(msg), 0) >= 0:
		return malformed("NUL byte")
	}
	return nil
}

// attrValue returns the value of field if it is the attribute "<name>=".
func attrValue(field string, name byte) (string, bool) {
	if len(field) < 2 || field[0] != name || field[1] != '=' {
		return "", false
	}
	return field[2:], true
}

// wantAttr is attrValue that reports a malformed message, requiring a
// non-empty value unless allowEmpty.
func wantAttr(field string, name byte, allowEmpty bool) (string, error) {
	v, ok := attrValue(field, name)
	if !ok {
		return "", malformed(fmt.Sprintf("expected attribute %q", string(name)+"="))
	}
	if v == "" && !allowEmpty {
		return "", malformed(fmt.Sprintf("empty attribute %q", string(name)+"="))
	}
	return v, nil
}

// checkExtensions validates optional extension attributes: ALPHA "=" value,
// value non-empty. Their contents are ignored. The mandatory extension
// "m" is refused wherever it appears, since it means the peer requires
// something this implementation does not know.
func checkExtensions(fields []string) error {
	for _, f := range fields {
		if len(f) < 3 || !isAlpha(f[0]) || f[1] != '=' {
			return malformed("bad extension attribute")
		}
		if f[0] == 'm' {
			return malformed("unsupported mandatory extension")
		}
	}
	return nil
}

func isAlpha(c byte) bool { return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }

// isPrintableNonce reports whether s is a valid RFC 5802 nonce: one or
// more "printable" characters, %x21-7E except ','.
func isPrintableNonce(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e || s[i] == ',' {
			return false
		}
	}
	return true
}

// checkSASLName validates RFC 5802's saslname (empty allowed, as libpq
// sends "n=,"): '=' only in the escapes "=2C" and "=3D".
func checkSASLName(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == '=' {
			if i+2 >= len(s) || !(s[i+1:i+3] == "2C" || s[i+1:i+3] == "3D") {
				return false
			}
			i += 2
		}
	}
	return true
}

func unescapeSASLName(s string) string {
	return strings.NewReplacer("=2C", ",", "=3D", "=").Replace(s)
}

func escapeSASLName(s string) string {
	return strings.NewReplacer("=", "=3D", ",", "=2C").Replace(s)
}
