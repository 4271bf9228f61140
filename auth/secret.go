package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
)

// SecretKind says how a password is stored.
type SecretKind int

// The kinds of stored secret.
const (
	SecretPlain SecretKind = iota
	SecretMD5
	SecretSCRAM
)

// String returns a short name for the kind.
func (k SecretKind) String() string {
	switch k {
	case SecretPlain:
		return "plain"
	case SecretMD5:
		return "md5"
	case SecretSCRAM:
		return "scram-sha-256"
	}
	return "SecretKind(" + strconv.Itoa(int(k)) + ")"
}

// Secret is a password as stored in mux's config or in
// pg_authid.rolpassword. Exactly one of Plain, MD5 and SCRAM is
// meaningful, depending on Kind.
type Secret struct {
	Kind  SecretKind
	Plain string       // Kind == SecretPlain
	MD5   string       // Kind == SecretMD5: "md5" + 32 lowercase hex = md5(password + username)
	SCRAM *SCRAMSecret // Kind == SecretSCRAM
}

// SCRAMSecret is a SCRAM-SHA-256 verifier: everything a server needs to
// check a client's proof, but not enough to log in as the client.
type SCRAMSecret struct {
	Iterations int
	Salt       []byte
	StoredKey  [32]byte
	ServerKey  [32]byte
}

const (
	// DefaultSCRAMIterations is the iteration count NewSCRAMSecret uses
	// when given none, and the one mock exchanges advertise. It matches
	// PostgreSQL's default scram_iterations.
	DefaultSCRAMIterations = 4096

	// defaultSaltLen matches PostgreSQL's SCRAM_DEFAULT_SALT_LEN.
	defaultSaltLen = 16

	scramPrefix = "SCRAM-SHA-256$"
	md5Prefix   = "md5"
	md5Len      = len(md5Prefix) + 32
)

// ParseSecret classifies a stored password. "md5" followed by 32
// lowercase hex digits is an md5 secret (PostgreSQL accepts only
// lowercase too). A string starting with "SCRAM-SHA-256$" must be a
// well-formed
//
//	SCRAM-SHA-256$<iterations>:<salt base64>$<StoredKey base64>:<ServerKey base64>
//
// and an error is returned otherwise. Anything else is a plain password.
func ParseSecret(s string) (Secret, error) {
	if isMD5Secret(s) {
		return Secret{Kind: SecretMD5, MD5: s}, nil
	}
	if strings.HasPrefix(s, scramPrefix) {
		sec, err := parseSCRAMSecret(s[len(scramPrefix):])
		if err != nil {
			return Secret{}, err
		}
		return Secret{Kind: SecretSCRAM, SCRAM: sec}, nil
	}
	return Secret{Kind: SecretPlain, Plain: s}, nil
}

var errBadSCRAMSecret = errors.New("malformed SCRAM-SHA-256 secret")

func parseSCRAMSecret(s string) (*SCRAMSecret, error) {
	params, keys, ok := strings.Cut(s, "$")
	if !ok {
		return nil, errBadSCRAMSecret
	}
	iterStr, saltStr, ok := strings.Cut(params, ":")
	if !ok {
		return nil, errBadSCRAMSecret
	}
	storedStr, serverStr, ok := strings.Cut(keys, ":")
	if !ok {
		return nil, errBadSCRAMSecret
	}
	iter, ok := parseDecimal(iterStr, math.MaxInt32)
	if !ok || iter < 1 {
		return nil, fmt.Errorf("%w: bad iteration count", errBadSCRAMSecret)
	}
	salt, ok := decodeBase64(saltStr)
	if !ok || len(salt) == 0 {
		return nil, fmt.Errorf("%w: bad salt", errBadSCRAMSecret)
	}
	sec := &SCRAMSecret{Iterations: iter, Salt: salt}
	if !decodeKey(storedStr, &sec.StoredKey) {
		return nil, fmt.Errorf("%w: bad StoredKey", errBadSCRAMSecret)
	}
	if !decodeKey(serverStr, &sec.ServerKey) {
		return nil, fmt.Errorf("%w: bad ServerKey", errBadSCRAMSecret)
	}
	return sec, nil
}

// NewSCRAMSecret derives a SCRAM-SHA-256 secret from a password, the way
// PostgreSQL does for CREATE ROLE ... PASSWORD. An empty salt is replaced
// by 16 random bytes and iterations < 1 by DefaultSCRAMIterations. The
// password goes through saslPrep, which implements only part of SASLprep.
//
// It panics only if the Go runtime forbids the derivation (FIPS 140-only
// mode with a salt shorter than 16 bytes).
func NewSCRAMSecret(password string, salt []byte, iterations int) *SCRAMSecret {
	if len(salt) == 0 {
		salt = make([]byte, defaultSaltLen)
		rand.Read(salt)
	}
	if iterations < 1 {
		iterations = DefaultSCRAMIterations
	}
	salted, err := saltedPassword(saslPrep(password), salt, iterations)
	if err != nil {
		panic("auth: " + err.Error())
	}
	clientKey := hmacSHA256(salted[:], clientKeyLabel)
	return &SCRAMSecret{
		Iterations: iterations,
		Salt:       append([]byte(nil), salt...),
		StoredKey:  sha256.Sum256(clientKey[:]),
		ServerKey:  hmacSHA256(salted[:], serverKeyLabel),
	}
}

// String returns the secret in pg_authid's text form, which ParseSecret
// reads back.
func (s *SCRAMSecret) String() string {
	return scramPrefix + strconv.Itoa(s.Iterations) + ":" + b64.EncodeToString(s.Salt) +
		"$" + b64.EncodeToString(s.StoredKey[:]) + ":" + b64.EncodeToString(s.ServerKey[:])
}
