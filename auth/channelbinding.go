package auth

import (
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
)

// SASL mechanism names. SCRAM-SHA-256-PLUS is SCRAM-SHA-256 with channel
// binding (RFC 5802 section 6), offered by PostgreSQL on TLS connections.
const (
	MechanismSCRAM     = mechanism
	MechanismSCRAMPlus = mechanism + "-PLUS"
)

// cbTypeEndPoint is the only channel binding type PostgreSQL supports
// (RFC 5929 section 4).
const cbTypeEndPoint = "tls-server-end-point"

// ErrChannelBinding is returned when SCRAM channel binding fails: a client
// that can bind but believes the server cannot (gs2 flag "y" although
// SCRAM-SHA-256-PLUS was offered: a downgrade by someone in the middle), or
// binding data that does not match the connection. The message is
// PostgreSQL's ("SCRAM channel binding negotiation error", "SCRAM channel
// binding check failed"), which reports both with SQLSTATE 28000. Test with
// errors.Is.
var ErrChannelBinding = errors.New("SCRAM channel binding")

var (
	errCBNegotiation = fmt.Errorf("%w negotiation error", ErrChannelBinding)
	errCBCheck       = fmt.Errorf("%w check failed", ErrChannelBinding)
)

// TLSServerEndPoint returns the tls-server-end-point channel binding data
// of a server certificate (RFC 5929 section 4.1): the certificate hashed
// with the hash of its signature algorithm, or with SHA-256 if that is MD5
// or SHA-1. Algorithms without a separate hash (Ed25519) have no binding
// data, as in PostgreSQL.
func TLSServerEndPoint(cert *x509.Certificate) ([]byte, error) {
	switch cert.SignatureAlgorithm {
	case x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1,
		x509.SHA256WithRSA, x509.SHA256WithRSAPSS, x509.DSAWithSHA256, x509.ECDSAWithSHA256:
		h := sha256.Sum256(cert.Raw)
		return h[:], nil
	case x509.SHA384WithRSA, x509.SHA384WithRSAPSS, x509.ECDSAWithSHA384:
		h := sha512.Sum384(cert.Raw)
		return h[:], nil
	case x509.SHA512WithRSA, x509.SHA512WithRSAPSS, x509.ECDSAWithSHA512:
		h := sha512.Sum512(cert.Raw)
		return h[:], nil
	}
	return nil, fmt.Errorf("tls-server-end-point channel binding is undefined for certificate signature algorithm %v", cert.SignatureAlgorithm)
}

// SetChannelBinding makes s offer SCRAM-SHA-256-PLUS: data is the
// tls-server-end-point binding data (TLSServerEndPoint) of the certificate
// the server presented on this connection. Call it before
// HandleClientFirst, on TLS connections only. From then on a client
// announcing "y" (can bind, thinks the server cannot) is refused.
func (s *SCRAMServer) SetChannelBinding(data []byte) {
	s.cbData = append([]byte(nil), data...)
}

// Mechanisms returns the SASL mechanisms to offer in AuthenticationSASL,
// SCRAM-SHA-256-PLUS first when channel binding is set, as PostgreSQL.
func (s *SCRAMServer) Mechanisms() []string {
	if s.cbData != nil {
		return []string{MechanismSCRAMPlus, MechanismSCRAM}
	}
	return []string{MechanismSCRAM}
}

// SelectMechanism records the mechanism the client chose in its
// SASLInitialResponse; it must be one of Mechanisms. Without a call
// SCRAM-SHA-256 is assumed.
func (s *SCRAMServer) SelectMechanism(name string) error {
	switch {
	case name == MechanismSCRAM:
		s.plus = false
	case name == MechanismSCRAMPlus && s.cbData != nil:
		s.plus = true
	default:
		return fmt.Errorf("SASL mechanism %q was not offered", name)
	}
	return nil
}

// checkCBFlag checks the gs2 channel binding flag of a client-first-message
// against what was offered and selected, as PostgreSQL's
// read_client_first_message does.
func (s *SCRAMServer) checkCBFlag(flag string) error {
	switch {
	case flag == "n" || flag == "y":
		if s.plus {
			return malformed("the client selected " + MechanismSCRAMPlus + ", but the message does not include channel binding data")
		}
		if flag == "y" && s.cbData != nil {
			return errCBNegotiation
		}
	case strings.HasPrefix(flag, "p="):
		if !s.plus {
			if s.cbData == nil {
				return errChannelBinding
			}
			return malformed("the client selected " + MechanismSCRAM + " without channel binding, but the message includes channel binding data")
		}
		if flag[2:] != cbTypeEndPoint {
			return malformed(fmt.Sprintf("unsupported channel binding type %q", flag[2:]))
		}
	default:
		return malformed("bad gs2 channel binding flag")
	}
	return nil
}
