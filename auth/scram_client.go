package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"strings"
)

// SCRAMClient runs the client side of one SCRAM-SHA-256 exchange, the
// part mux plays when it logs in to PostgreSQL. It never asks for channel
// binding (gs2 flag "n").
//
// Call ClientFirst, HandleServerFirst and HandleServerFinal in order. A
// SCRAMClient is not safe for concurrent use.
type SCRAMClient struct {
	password  string // already through saslPrep; empty with keys
	haveKeys  bool
	clientKey [32]byte
	serverKey [32]byte

	// user and nonce go into the client-first-message. user is empty
	// outside tests; nonce is random unless a test replaces it.
	user  string
	nonce string

	state           int
	clientFirstBare string
	authMsg         []byte
}

const (
	clientStart = iota
	clientSentFirst
	clientSentFinal
	clientDone
	clientFailed
)

// NewSCRAMClient returns a client that logs in with password. Like libpq
// it refuses an empty password; a password containing NUL cannot be a
// PostgreSQL password and is refused too.
func NewSCRAMClient(password string) (*SCRAMClient, error) {
	if password == "" {
		return nil, errors.New("empty password")
	}
	if strings.IndexByte(password, 0) >= 0 {
		return nil, errors.New("password contains a NUL byte")
	}
	return &SCRAMClient{password: saslPrep(password), nonce: makeNonce()}, nil
}

// NewSCRAMClientWithKeys returns a client that logs in without the
// password: the proof is computed from clientKey directly and the
// server's signature is checked with serverKey. This is SCRAM
// pass-through, with keys taken from SCRAMServer.ClientKey and the
// secret's ServerKey; it works only if the server holds the secret those
// keys came from (same salt and iteration count).
func NewSCRAMClientWithKeys(clientKey, serverKey [32]byte) *SCRAMClient {
	return &SCRAMClient{haveKeys: true, clientKey: clientKey, serverKey: serverKey, nonce: makeNonce()}
}

// ClientFirst returns the client-first-message, "n,,n=,r=<nonce>". The
// user name is left empty as libpq does: PostgreSQL ignores it.
func (c *SCRAMClient) ClientFirst() []byte {
	if c.state == clientStart {
		c.clientFirstBare = "n=" + escapeSASLName(c.user) + ",r=" + c.nonce
		c.state = clientSentFirst
	}
	return []byte("n,," + c.clientFirstBare)
}

// HandleServerFirst takes the server-first-message and returns the
// client-final-message. It checks that the server's nonce extends the
// client's, that the salt decodes and that the iteration count is between
// 1 and MaxSCRAMIterations (before running PBKDF2).
func (c *SCRAMClient) HandleServerFirst(msg []byte) ([]byte, error) {
	if c.state != clientSentFirst {
		return nil, errState
	}
	c.state = clientFailed
	if err := checkMessage(msg); err != nil {
		return nil, err
	}
	m := string(msg)

	// server-first-message = [reserved-mext ","] nonce "," salt "," iteration-count ["," extensions]
	fields := strings.Split(m, ",")
	if _, ok := attrValue(fields[0], 'm'); ok {
		return nil, malformed("unsupported mandatory extension")
	}
	if len(fields) < 3 {
		return nil, malformed("missing attributes in server-first-message")
	}
	nonce, err := wantAttr(fields[0], 'r', false)
	if err != nil {
		return nil, err
	}
	if !isPrintableNonce(nonce) {
		return nil, malformed("bad nonce")
	}
	if len(nonce) <= len(c.nonce) || nonce[:len(c.nonce)] != c.nonce {
		return nil, malformed("server nonce does not extend client nonce")
	}
	saltStr, err := wantAttr(fields[1], 's', false)
	if err != nil {
		return nil, err
	}
	salt, ok := decodeBase64(saltStr)
	if !ok || len(salt) == 0 {
		return nil, malformed("bad salt")
	}
	iterStr, err := wantAttr(fields[2], 'i', false)
	if err != nil {
		return nil, err
	}
	iter, ok := parseDecimal(iterStr, MaxSCRAMIterations)
	if !ok || iter < 1 {
		return nil, malformed(fmt.Sprintf("iteration count must be between 1 and %d", MaxSCRAMIterations))
	}
	if err := checkExtensions(fields[3:]); err != nil {
		return nil, err
	}

	if !c.haveKeys {
		salted, err := saltedPassword(c.password, salt, iter)
		if err != nil {
			return nil, err
		}
		c.clientKey = hmacSHA256(salted[:], clientKeyLabel)
		c.serverKey = hmacSHA256(salted[:], serverKeyLabel)
	}
	noProof := "c=" + b64.EncodeToString([]byte("n,,")) + ",r=" + nonce
	c.authMsg = authMessage(c.clientFirstBare, m, noProof)
	storedKey := sha256.Sum256(c.clientKey[:])
	clientSig := hmacSHA256(storedKey[:], c.authMsg)
	proof := xor32(c.clientKey, clientSig)
	c.state = clientSentFinal
	return []byte(noProof + ",p=" + b64.EncodeToString(proof[:])), nil
}

// HandleServerFinal takes the server-final-message and checks the
// server's signature in constant time. A server error ("e=...") is
// returned as an error carrying the server's text.
func (c *SCRAMClient) HandleServerFinal(msg []byte) error {
	if c.state != clientSentFinal {
		return errState
	}
	c.state = clientFailed
	if err := checkMessage(msg); err != nil {
		return err
	}

	// server-final-message = (server-error / verifier) ["," extensions]
	fields := strings.Split(string(msg), ",")
	if err := checkExtensions(fields[1:]); err != nil {
		return err
	}
	if e, ok := attrValue(fields[0], 'e'); ok {
		return fmt.Errorf("server reported SCRAM error: %q", e)
	}
	sigStr, err := wantAttr(fields[0], 'v', false)
	if err != nil {
		return err
	}
	var sig [32]byte
	if !decodeKey(sigStr, &sig) {
		return malformed("bad server signature")
	}
	want := hmacSHA256(c.serverKey[:], c.authMsg)
	if subtle.ConstantTimeCompare(sig[:], want[:]) != 1 {
		return errServerSig
	}
	c.state = clientDone
	return nil
}
