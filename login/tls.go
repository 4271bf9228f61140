package login

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"

	"github.com/muxpg/mux/auth"
	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/wire"
)

// ClientTLS is mux's TLS towards clients (client_tls_*), part of a
// snapshot and read-only. Its mode, not the config's, is what sessions
// follow.
type ClientTLS struct {
	// mode is client_tls_sslmode: disable, allow, prefer, require,
	// verify-ca or verify-full.
	mode   string
	config *tls.Config // nil with mode disable
	// direct is config for direct TLS connections, which must name ALPN
	// "postgresql" (direct.go); nil with mode disable.
	direct *tls.Config
	// endPoint is the tls-server-end-point channel binding data of mux's
	// certificate; nil if it has none (Ed25519), and then
	// SCRAM-SHA-256-PLUS is not offered.
	endPoint []byte
}

// NewClientTLS builds the client side's TLS from a validated config and
// the certificate, key and CAs its files hold.
func NewClientTLS(cfg *config.Config, files config.TLSFiles) (*ClientTLS, error) {
	t := &ClientTLS{mode: cfg.ClientTLSSSLMode}
	if t.mode == "" || t.mode == "disable" {
		t.mode = "disable"
		return t, nil
	}
	if files.Cert == nil {
		return nil, fmt.Errorf("client_tls_cert_file: required when client_tls_sslmode is %q", t.mode)
	}
	t.config = &tls.Config{
		Certificates: []tls.Certificate{*files.Cert},
		MinVersion:   tlsVersion(cfg.ClientTLSMinVersion),
		ClientCAs:    files.CAs,
		// As PostgreSQL 17: ALPN "postgresql" is offered after an
		// SSLRequest too, where a client may also name none.
		NextProtos: []string{alpnProtocol},
	}
	// Validated at load.
	t.config.CurvePreferences, _ = config.ECDHCurves(cfg.ClientTLSECDHCurve)
	if t.verify() {
		if t.config.ClientCAs == nil {
			return nil, fmt.Errorf("client_tls_ca_file: required when client_tls_sslmode is %q", t.mode)
		}
		t.config.ClientAuth = tls.RequireAndVerifyClientCert
	} else if t.config.ClientCAs != nil {
		// As Postgres with ssl_ca_file: ask for a certificate, verify one
		// that is given, so auth_hba_file's clientcert and cert rows can
		// be met.
		t.config.ClientAuth = tls.VerifyClientCertIfGiven
	}
	t.direct = directConfig(t.config)
	// tls.LoadX509KeyPair fills Leaf: the certificate clients see first.
	if ep, err := auth.TLSServerEndPoint(files.Cert.Leaf); err == nil {
		t.endPoint = ep
	}
	return t, nil
}

func tlsVersion(v string) uint16 {
	if v == "tlsv1.3" {
		return tls.VersionTLS13
	}
	return tls.VersionTLS12
}

// required reports whether plain TCP clients are refused.
func (t *ClientTLS) required() bool {
	return t.mode == "require" || t.verify()
}

// verify reports whether clients must present a certificate signed by
// client_tls_ca_file.
func (t *ClientTLS) verify() bool {
	return t.mode == "verify-ca" || t.mode == "verify-full"
}

// acceptsTLS reports whether an SSLRequest from c is answered 'S' under t.
func (c *Conn) acceptsTLS(t *ClientTLS) bool {
	return t.config != nil && !c.TLS && !c.IsUnix()
}

// startTLS answers an SSLRequest with 'S' and runs the TLS handshake with
// t, bounded by the login deadline on the connection; the session then
// continues on the encrypted connection.
func (c *Conn) startTLS(t *ClientTLS) error {
	if _, err := c.Write([]byte{'S'}); err != nil {
		return err
	}
	tc := tls.Server(c.Conn, t.config)
	if err := tc.Handshake(); err != nil {
		// %v: a timed-out handshake must not get a plain-text ErrorResponse.
		return fmt.Errorf("TLS handshake: %v", err)
	}
	c.Conn = tc
	c.TLS = true
	return nil
}

// CheckTLS enforces t's client_tls_sslmode once the client has named its
// user: require and the verify modes refuse plain TCP connections, and
// verify-full wants the certificate's CN to be the user name.
func (c *Conn) CheckTLS(t *ClientTLS, user string) error {
	if !c.TLS {
		if t.required() && !c.IsUnix() {
			return &wire.Error{Severity: "FATAL", Code: wire.CodeInvalidAuthorization,
				Message: fmt.Sprintf("SSL required: this server only accepts encrypted connections (client_tls_sslmode = %s)", t.mode),
				Hint:    "connect with sslmode=require or stronger"}
		}
		return nil
	}
	if t.mode != "verify-full" {
		return nil
	}
	var certs []*x509.Certificate
	if tc, ok := c.Conn.(*tls.Conn); ok {
		certs = tc.ConnectionState().PeerCertificates
	}
	if len(certs) == 0 || certs[0].Subject.CommonName != user {
		cn := ""
		if len(certs) > 0 {
			cn = certs[0].Subject.CommonName
		}
		return wire.Fatal(wire.CodeInvalidAuthorization,
			"certificate authentication failed for user %s: the client certificate's CN %s is not the user name (client_tls_sslmode = verify-full)",
			quote(user), quote(cn))
	}
	return nil
}

// ChannelBinding returns the tls-server-end-point data to offer
// SCRAM-SHA-256-PLUS with, or nil on a plain connection; t must be the
// TLS the handshake ran with.
func (c *Conn) ChannelBinding(t *ClientTLS) []byte {
	if !c.TLS {
		return nil
	}
	return t.endPoint
}
