package pool

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"

	"github.com/muxpg/mux/internal/wire"
)

// TLS says how mux encrypts its connections to Postgres
// (server_tls_sslmode). A nil *TLS means plain connections ("disable").
// It is read-only once loaded and shared by every pool.
type TLS struct {
	// Mode is "prefer" (TLS if the server agrees), "require" (TLS, any
	// certificate), "verify-ca" (certificate chain checked against the CA
	// file) or "verify-full" (and the host name).
	Mode string
	// config holds the CAs, the optional client certificate and the
	// minimum version; each connection gets a clone with its checks.
	config *tls.Config
}

// NewTLS builds the TLS for server_tls_* from what its files hold: the CAs
// (needed by the verify modes; nil without a CA file), an optional client
// certificate, and the minimum version ("tlsv1.2" or "tlsv1.3"). Mode
// "disable" (or "") returns nil.
func NewTLS(mode, minVersion string, cas *x509.CertPool, cert *tls.Certificate) (*TLS, error) {
	if mode == "" || mode == "disable" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: cas}
	if minVersion == "tlsv1.3" {
		cfg.MinVersion = tls.VersionTLS13
	}
	if cert != nil {
		cfg.Certificates = []tls.Certificate{*cert}
	}
	switch mode {
	case "prefer", "require":
		// Encryption only, as libpq without a root certificate.
		cfg.InsecureSkipVerify = true
	case "verify-ca":
		// The chain is checked, the name is not: crypto/tls checks both or
		// neither, so check the chain here.
		if cfg.RootCAs == nil {
			return nil, errors.New("server_tls_ca_file: required when server_tls_sslmode is \"verify-ca\"")
		}
		cfg.InsecureSkipVerify = true
		roots := cfg.RootCAs
		cfg.VerifyConnection = func(cs tls.ConnectionState) error {
			return verifyChain(cs, roots)
		}
	case "verify-full":
		if cfg.RootCAs == nil {
			return nil, errors.New("server_tls_ca_file: required when server_tls_sslmode is \"verify-full\"")
		}
	default:
		return nil, fmt.Errorf("server_tls_sslmode: unknown mode %q", mode)
	}
	return &TLS{Mode: mode, config: cfg}, nil
}

func verifyChain(cs tls.ConnectionState, roots *x509.CertPool) error {
	if len(cs.PeerCertificates) == 0 {
		return errors.New("server presented no certificate")
	}
	opts := x509.VerifyOptions{Roots: roots, Intermediates: x509.NewCertPool()}
	for _, c := range cs.PeerCertificates[1:] {
		opts.Intermediates.AddCert(c)
	}
	_, err := cs.PeerCertificates[0].Verify(opts)
	return err
}

// StartTLS negotiates TLS on conn, a fresh connection to host (the name or
// address dialled; verify-full checks the certificate against it): it
// sends SSLRequest and, if Postgres answers 'S', runs the handshake, bounded
// by conn's deadline. If Postgres answers 'N', mode "prefer" carries on
// with conn in the clear and the other modes fail. Unix sockets are never
// encrypted, as with libpq. On error the caller still owns conn and must
// close it.
func (t *TLS) StartTLS(conn net.Conn, network, host string) (net.Conn, error) {
	if t == nil || network == "unix" {
		return conn, nil
	}
	var req [8]byte
	binary.BigEndian.PutUint32(req[0:4], 8)
	binary.BigEndian.PutUint32(req[4:8], wire.SSLRequestCode)
	if _, err := conn.Write(req[:]); err != nil {
		return nil, err
	}
	var answer [1]byte
	if _, err := io.ReadFull(conn, answer[:]); err != nil {
		return nil, fmt.Errorf("reading the answer to SSLRequest: %w", err)
	}
	switch answer[0] {
	case 'S':
	case 'N':
		if t.Mode == "prefer" {
			return conn, nil
		}
		return nil, fmt.Errorf("server does not support TLS (server_tls_sslmode = %s)", t.Mode)
	default:
		return nil, fmt.Errorf("unexpected answer %q to SSLRequest", answer[0])
	}
	cfg := t.config.Clone()
	if t.Mode == "verify-full" {
		cfg.ServerName = host
	}
	tc := tls.Client(conn, cfg)
	if err := tc.Handshake(); err != nil {
		return nil, fmt.Errorf("TLS handshake with server (server_tls_sslmode = %s): %w", t.Mode, err)
	}
	return tc, nil
}
