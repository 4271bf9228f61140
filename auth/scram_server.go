package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"fmt"
	"strconv"
	"strings"
	"sync"
)

// SCRAMServer runs the server side of one SCRAM-SHA-256 exchange, the
// part mux plays towards its clients. Without SetChannelBinding only the
// mechanism "SCRAM-SHA-256" is offered, so a client asking for channel
// binding (gs2 flag "p=") is refused and the flags "n" and "y" are
// accepted; with it, SCRAM-SHA-256-PLUS (tls-server-end-point) is offered
// too (see channelbinding.go). Like PostgreSQL, it ignores the user name in
// the client-first-message (the user comes from the startup packet) and
// refuses an authorization identity ("a=").
//
// Call SetChannelBinding and SelectMechanism if needed, then
// HandleClientFirst and HandleClientFinal, once each. A SCRAMServer is not
// safe for concurrent use.
type SCRAMServer struct {
	secret SCRAMSecret
	mock   bool

	state int

	// nonce, if set before HandleClientFirst, is used as the server part
	// of the nonce instead of a random one (for tests).
	nonce string

	gs2Header       string
	clientUser      string
	clientFirstBare string
	serverFirst     string
	fullNonce       string

	clientKey [32]byte

	// cbData is the tls-server-end-point binding data offered with
	// SCRAM-SHA-256-PLUS (nil: not offered); plus says the client chose it.
	cbData []byte
	plus   bool
}

const (
	serverStart = iota
	serverSentFirst
	serverSucceeded
	serverFailed
)

// NewSCRAMServer returns a server that checks clients against secret,
// which must not be nil. The secret is copied.
func NewSCRAMServer(secret *SCRAMSecret) *SCRAMServer {
	s := &SCRAMServer{secret: *secret}
	s.secret.Salt = append([]byte(nil), secret.Salt...)
	return s
}

// NewMockSCRAMServer returns a server for a user that does not exist or
// has no usable secret. On the wire it looks like a real one: it sends a
// salt and iteration count (DefaultSCRAMIterations) that stay the same
// for the same user name for the life of the process, so probing cannot
// tell which users exist, and HandleClientFinal does the same work as for
// a real user before failing with ErrAuthFailed. The salt is
// HMAC-SHA-256(key, username) truncated to 16 bytes, with key random per
// process, as PostgreSQL's scram_mock_salt does with its mock nonce.
func NewMockSCRAMServer(username string) *SCRAMServer {
	mac := hmacSHA256(mockKey(), []byte(username))
	s := &SCRAMServer{mock: true}
	s.secret.Iterations = DefaultSCRAMIterations
	s.secret.Salt = mac[:defaultSaltLen]
	return s
}

// SetMockIterations sets the iteration count a server from
// NewMockSCRAMServer announces (scram_iterations), so that an unknown user
// looks like a user whose secret mux derived from a plain-text password.
// n < 1, or a real server, leaves it as it is.
func (s *SCRAMServer) SetMockIterations(n int) {
	if s.mock && n > 0 {
		s.secret.Iterations = n
	}
}

var mockKey = sync.OnceValue(func() []byte {
	key := make([]byte, 32)
	rand.Read(key)
	return key
})

// HandleClientFirst takes the client-first-message (the data of
// SASLInitialResponse) and returns the server-first-message.
func (s *SCRAMServer) HandleClientFirst(msg []byte) ([]byte, error) {
	if s.state != serverStart {
		return nil, errState
	}
	s.state = serverFailed
	if err := checkMessage(msg); err != nil {
		return nil, err
	}
	m := string(msg)

	// gs2-header = gs2-cbind-flag "," [ authzid ] ","
	flag, rest, ok := strings.Cut(m, ",")
	if !ok {
		return nil, malformed("missing gs2 header")
	}
	if err := s.checkCBFlag(flag); err != nil {
		return nil, err
	}
	authzid, bare, ok := strings.Cut(rest, ",")
	if !ok {
		return nil, malformed("missing gs2 header")
	}
	if authzid != "" {
		if strings.HasPrefix(authzid, "a=") {
			return nil, malformed("authorization identity is not supported")
		}
		return nil, malformed("bad gs2 header")
	}

	// client-first-message-bare = [reserved-mext ","] username "," nonce ["," extensions]
	fields := strings.Split(bare, ",")
	if _, ok := attrValue(fields[0], 'm'); ok {
		return nil, malformed("unsupported mandatory extension")
	}
	if len(fields) < 2 {
		return nil, malformed("missing attributes in client-first-message")
	}
	user, err := wantAttr(fields[0], 'n', true)
	if err != nil {
		return nil, err
	}
	if !checkSASLName(user) {
		return nil, malformed("bad user name")
	}
	cnonce, err := wantAttr(fields[1], 'r', false)
	if err != nil {
		return nil, err
	}
	if !isPrintableNonce(cnonce) {
		return nil, malformed("bad nonce")
	}
	if err := checkExtensions(fields[2:]); err != nil {
		return nil, err
	}

	snonce := s.nonce
	if snonce == "" {
		snonce = makeNonce()
	}
	s.gs2Header = m[:len(m)-len(bare)]
	s.clientUser = unescapeSASLName(user)
	s.clientFirstBare = bare
	s.fullNonce = cnonce + snonce
	s.serverFirst = "r=" + s.fullNonce +
		",s=" + b64.EncodeToString(s.secret.Salt) +
		",i=" + strconv.Itoa(s.secret.Iterations)
	s.state = serverSentFirst
	return []byte(s.serverFirst), nil
}

// HandleClientFinal takes the client-final-message and returns the
// server-final-message ("v=<ServerSignature>"). It checks the nonce, the
// channel-binding echo against the gs2 header the client sent, and the
// proof. A failed check returns ErrAuthFailed (possibly wrapped: use
// errors.Is); malformed input returns another error.
func (s *SCRAMServer) HandleClientFinal(msg []byte) ([]byte, error) {
	if s.state != serverSentFirst {
		return nil, errState
	}
	s.state = serverFailed
	if err := checkMessage(msg); err != nil {
		return nil, err
	}
	m := string(msg)

	// client-final-message = channel-binding "," nonce ["," extensions] "," proof
	fields := strings.Split(m, ",")
	if len(fields) < 3 {
		return nil, malformed("missing attributes in client-final-message")
	}
	cbind, err := wantAttr(fields[0], 'c', false)
	if err != nil {
		return nil, err
	}
	if _, ok := decodeBase64(cbind); !ok {
		return nil, malformed("bad channel binding encoding")
	}
	nonce, err := wantAttr(fields[1], 'r', false)
	if err != nil {
		return nil, err
	}
	if !isPrintableNonce(nonce) {
		return nil, malformed("bad nonce")
	}
	last := fields[len(fields)-1]
	proofStr, err := wantAttr(last, 'p', false)
	if err != nil {
		return nil, malformed("proof missing or not last")
	}
	var proof [32]byte
	if !decodeKey(proofStr, &proof) {
		return nil, malformed("bad proof")
	}
	if err := checkExtensions(fields[2 : len(fields)-1]); err != nil {
		return nil, err
	}

	if s.plus {
		// c= is the gs2 header followed by the binding data.
		if cbind != b64.EncodeToString(append([]byte(s.gs2Header), s.cbData...)) {
			return nil, errCBCheck
		}
	} else if cbind != b64.EncodeToString([]byte(s.gs2Header)) {
		return nil, fmt.Errorf("%w: channel binding does not match gs2 header", ErrAuthFailed)
	}
	if nonce != s.fullNonce {
		return nil, fmt.Errorf("%w: nonce does not match", ErrAuthFailed)
	}

	noProof := m[:len(m)-len(last)-1]
	am := authMessage(s.clientFirstBare, s.serverFirst, noProof)
	clientSig := hmacSHA256(s.secret.StoredKey[:], am)
	clientKey := xor32(proof, clientSig)
	storedKey := sha256.Sum256(clientKey[:])
	if subtle.ConstantTimeCompare(storedKey[:], s.secret.StoredKey[:]) != 1 || s.mock {
		return nil, ErrAuthFailed
	}
	serverSig := hmacSHA256(s.secret.ServerKey[:], am)
	s.clientKey = clientKey
	s.state = serverSucceeded
	return []byte("v=" + b64.EncodeToString(serverSig[:])), nil
}

// ClientKey returns the ClientKey recovered from the client's proof
// (proof XOR ClientSignature) after HandleClientFinal succeeded. With it
// and the secret's ServerKey, NewSCRAMClientWithKeys can log in to a
// PostgreSQL server that holds the same secret without the password.
func (s *SCRAMServer) ClientKey() (key [32]byte, ok bool) {
	if s.state != serverSucceeded {
		return key, false
	}
	return s.clientKey, true
}
