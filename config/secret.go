package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SecretKind tells how a configured password is stored.
type SecretKind int

// The kinds of stored password.
const (
	// SecretPlain is a clear-text password.
	SecretPlain SecretKind = iota
	// SecretMD5 is "md5" followed by 32 lowercase hex digits of
	// md5(password || username), as stored in pg_authid.
	SecretMD5
	// SecretSCRAM is a SCRAM-SHA-256 secret as stored in pg_authid.
	SecretSCRAM
)

// String returns "plain", "md5" or "scram-sha-256".
func (k SecretKind) String() string {
	switch k {
	case SecretMD5:
		return "md5"
	case SecretSCRAM:
		return "scram-sha-256"
	default:
		return "plain"
	}
}

const (
	md5Prefix   = "md5"
	md5Len      = len(md5Prefix) + 32
	scramPrefix = "SCRAM-SHA-256$"
	scramKeyLen = 32 // SHA-256 output size
)

// ClassifySecret reports how s is meant to be stored, without checking that
// it is well formed (ValidateSecret does that). A string starting with
// "SCRAM-SHA-256$" is a SCRAM secret; a 35-byte string starting with "md5" is
// an md5 secret; anything else is a plain-text password.
func ClassifySecret(s string) SecretKind {
	switch {
	case strings.HasPrefix(s, scramPrefix):
		return SecretSCRAM
	case len(s) == md5Len && strings.HasPrefix(s, md5Prefix):
		return SecretMD5
	default:
		return SecretPlain
	}
}

// SCRAMSecret is the decoded form of a SCRAM-SHA-256 secret
// "SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>" with base64
// salt and keys.
type SCRAMSecret struct {
	Iterations int
	Salt       []byte
	StoredKey  []byte // 32 bytes
	ServerKey  []byte // 32 bytes
}

// ParseSCRAMSecret decodes a SCRAM-SHA-256 secret in pg_authid format.
func ParseSCRAMSecret(s string) (SCRAMSecret, error) {
	var sec SCRAMSecret
	rest, ok := strings.CutPrefix(s, scramPrefix)
	if !ok {
		return sec, errors.New("scram secret must start with \"SCRAM-SHA-256$\"")
	}
	params, keys, ok := strings.Cut(rest, "$")
	if !ok {
		return sec, errors.New("malformed scram secret: want SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>")
	}
	iter, salt, ok1 := strings.Cut(params, ":")
	stored, server, ok2 := strings.Cut(keys, ":")
	if !ok1 || !ok2 {
		return sec, errors.New("malformed scram secret: want SCRAM-SHA-256$<iterations>:<salt>$<StoredKey>:<ServerKey>")
	}
	n, err := strconv.ParseInt(iter, 10, 32)
	if err != nil || n <= 0 {
		return sec, fmt.Errorf("malformed scram secret: iteration count %q is not a positive integer", iter)
	}
	sec.Iterations = int(n)
	if sec.Salt, err = base64.StdEncoding.Strict().DecodeString(salt); err != nil || len(sec.Salt) == 0 {
		return sec, errors.New("malformed scram secret: salt is not valid non-empty base64")
	}
	if sec.StoredKey, err = decodeSCRAMKey(stored); err != nil {
		return sec, fmt.Errorf("malformed scram secret: StoredKey %v", err)
	}
	if sec.ServerKey, err = decodeSCRAMKey(server); err != nil {
		return sec, fmt.Errorf("malformed scram secret: ServerKey %v", err)
	}
	return sec, nil
}

func decodeSCRAMKey(s string) ([]byte, error) {
	b, err := base64.StdEncoding.Strict().DecodeString(s)
	if err != nil {
		return nil, errors.New("is not valid base64")
	}
	if len(b) != scramKeyLen {
		return nil, fmt.Errorf("is %d bytes, want %d", len(b), scramKeyLen)
	}
	return b, nil
}

// ValidateSecret checks a configured password. Plain-text passwords
// (including "") are accepted unless they contain a NUL byte; md5 and SCRAM
// secrets, as classified by ClassifySecret, must be well formed.
func ValidateSecret(s string) error {
	if strings.IndexByte(s, 0) >= 0 {
		return errors.New("password must not contain NUL bytes")
	}
	switch ClassifySecret(s) {
	case SecretSCRAM:
		_, err := ParseSCRAMSecret(s)
		return err
	case SecretMD5:
		for _, c := range s[len(md5Prefix):] {
			if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
				return errors.New("malformed md5 secret: want \"md5\" followed by 32 lowercase hex digits")
			}
		}
	}
	return nil
}
