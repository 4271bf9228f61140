package proxy

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"

	"github.com/muxpg/mux/auth"
	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/wire"
)

// clientTLS is mux's TLS towards clients (client_tls_*), loaded once by
// New and read-only afterwards. Its mode, not the config's, is what
// sessions follow.
type clientTLS struct {
	// mode is client_tls_sslmode: disable, allow, prefer, require,
	// verify-ca or verify-full.
	mode   string
	config *tls.Config // nil with mode disable
	// endPoint is the tls-server-end-point channel binding data of mux's
	// certificate; nil if it has none (Ed25519), and then
	// SCRAM-SHA-256-PLUS is not offered.
	endPoint []byte
}

// loadClientTLS reads the certificate, key and CA files of a validated
// config.
func loadClientTLS(cfg *config.Config) (*clientTLS, error) {
	t := &clientTLS{mode: cfg.ClientTLSSSLMode}
	if t.mode == "" || t.mode == "disable" {
		t.mode = "disable"
		return t, nil
	}
	cert, err := tls.LoadX509KeyPair(cfg.ClientTLSCertFile, cfg.ClientTLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("client_tls_cert_file, client_tls_key_file: %w", err)
	}
	t.config = &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tlsVersion(cfg.ClientTLSMinVersion),
	}
	if cfg.ClientTLSCAFile != "" {
		pem, err := os.ReadFile(cfg.ClientTLSCAFile)
		if err != nil {
			return nil, fmt.Errorf("client_tls_ca_file: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("client_tls_ca_file: no PEM certificate in %s", cfg.ClientTLSCAFile)
		}
		t.config.ClientCAs = pool
	}
	if t.verify() {
		if t.config.ClientCAs == nil {
			return nil, fmt.Errorf("client_tls_ca_file: required when client_tls_sslmode is %q", t.mode)
		}
		t.config.ClientAuth = tls.RequireAndVerifyClientCert
	}
	// LoadX509KeyPair fills Leaf: the certificate clients see first.
	if ep, err := auth.TLSServerEndPoint(cert.Leaf); err == nil {
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
func (t *clientTLS) required() bool {
	return t.mode == "require" || t.verify()
}

// verify reports whether clients must present a certificate signed by
// client_tls_ca_file.
func (t *clientTLS) verify() bool {
	return t.mode == "verify-ca" || t.mode == "verify-full"
}

// isUnix reports whether c came in on the Unix socket: there TLS is never
// offered nor required, as in PostgreSQL.
func (c *clientConn) isUnix() bool {
	return c.conn.LocalAddr().Network() == "unix"
}

// acceptsTLS reports whether an SSLRequest from c is answered 'S'.
func (c *clientConn) acceptsTLS() bool {
	return c.p.clientTLS.Load().config != nil && !c.tls && !c.isUnix()
}

// startTLS answers an SSLRequest with 'S' and runs the TLS handshake,
// bounded by the login deadline on the connection; the session then
// continues on the encrypted connection.
func (c *clientConn) startTLS() error {
	if _, err := c.conn.Write([]byte{'S'}); err != nil {
		return err
	}
	tc := tls.Server(c.conn, c.p.clientTLS.Load().config)
	if err := tc.Handshake(); err != nil {
		// %v: a timed-out handshake must not get a plain-text ErrorResponse.
		return fmt.Errorf("TLS handshake: %v", err)
	}
	c.conn = tc
	c.tls = true
	return nil
}

// checkTLS enforces client_tls_sslmode once the client has named its user:
// require and the verify modes refuse plain TCP connections, and
// verify-full wants the certificate's CN to be the user name.
func (c *clientConn) checkTLS(user string) error {
	t := c.p.clientTLS.Load()
	if !c.tls {
		if t.required() && !c.isUnix() {
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
	if tc, ok := c.conn.(*tls.Conn); ok {
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

// channelBinding returns the tls-server-end-point data to offer
// SCRAM-SHA-256-PLUS with, or nil on a plain connection.
func (c *clientConn) channelBinding() []byte {
	if !c.tls {
		return nil
	}
	return c.p.clientTLS.Load().endPoint
}
