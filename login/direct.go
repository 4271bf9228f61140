package login

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"slices"
)

// Direct TLS (PostgreSQL 17's sslnegotiation=direct): the client starts
// the TLS handshake at once instead of sending an SSLRequest, and must
// name the ALPN protocol "postgresql", so that a TLS connection meant for
// another service is never read as a PostgreSQL session.

// tlsHandshakeRecord is the first byte of a TLS record carrying a
// handshake message (content type 22), and so of every ClientHello. No
// startup packet begins with it: its length word would be over 369 MB,
// far above wire.MaxStartupPacketLen.
const tlsHandshakeRecord = 0x16

// alpnProtocol is the ALPN protocol PostgreSQL 17 names and requires on
// direct TLS connections.
const alpnProtocol = "postgresql"

// alertNoApplicationProtocol is a TLS alert record, in the clear as the
// handshake has not begun: level fatal (2), description
// no_application_protocol (120, RFC 7301), what PostgreSQL sends a direct
// TLS client that does not ask for ALPN "postgresql".
var alertNoApplicationProtocol = []byte{21, 3, 3, 0, 2, 2, 120}

// errNoALPN refuses a direct TLS handshake without ALPN "postgresql".
var errNoALPN = errors.New("client offered no ALPN protocol \"postgresql\"")

// startDirectTLS runs the TLS handshake of a client whose first bytes, hdr,
// began a ClientHello, on the direct TLS configuration of t. A listener
// without client TLS (or the Unix socket) closes such a connection with no
// answer: the client speaks TLS and could not read a plain-text error.
func (c *Conn) startDirectTLS(t *ClientTLS, hdr []byte) error {
	if !c.acceptsTLS(t) {
		if c.IsUnix() {
			return errors.New("direct TLS connection refused: TLS is not offered on the Unix socket")
		}
		return fmt.Errorf("direct TLS connection refused: client TLS is not enabled (client_tls_sslmode = %s)", t.mode)
	}
	dc := &directConn{Conn: c.Conn, pre: hdr}
	tc := tls.Server(dc, t.direct)
	if err := tc.Handshake(); err != nil {
		// %v: a timed-out handshake must not get a plain-text ErrorResponse.
		return fmt.Errorf("direct TLS handshake: %v", err)
	}
	c.Conn = tc
	c.TLS = true
	return nil
}

// directConfig returns config for direct TLS: the same certificates and
// client-certificate policy, and a handshake that fails with the alert
// no_application_protocol unless the client offers ALPN "postgresql".
// (crypto/tls itself refuses only a client offering other protocols.)
func directConfig(config *tls.Config) *tls.Config {
	d := config.Clone()
	d.GetConfigForClient = func(hello *tls.ClientHelloInfo) (*tls.Config, error) {
		if slices.Contains(hello.SupportedProtos, alpnProtocol) {
			return nil, nil
		}
		if dc, ok := hello.Conn.(*directConn); ok {
			dc.refuse(alertNoApplicationProtocol)
		}
		return nil, errNoALPN
	}
	return d
}

// directConn is a client socket as the TLS server of a direct connection
// reads it: the ClientHello bytes ReadStartup already read come first. It
// is used by the login's goroutine alone.
type directConn struct {
	net.Conn
	pre []byte
	// muted drops writes once refuse has sent its alert, so that
	// crypto/tls's own internal_error alert does not follow it.
	muted bool
}

func (d *directConn) Read(b []byte) (int, error) {
	if len(d.pre) > 0 {
		n := copy(b, d.pre)
		d.pre = d.pre[n:]
		return n, nil
	}
	return d.Conn.Read(b)
}

func (d *directConn) Write(b []byte) (int, error) {
	if d.muted {
		return len(b), nil
	}
	return d.Conn.Write(b)
}

// refuse sends alert, before any handshake message, and mutes the
// connection.
func (d *directConn) refuse(alert []byte) {
	_, _ = d.Conn.Write(alert)
	d.muted = true
}
