// Package login runs a client's login up to the point where it is
// authenticated: the startup packets (SSLRequest, GSSENCRequest,
// CancelRequest, StartupMessage), client TLS, the password, certificate and
// peer exchanges, auth_hba_file's dispatch, and the slowing of repeated
// failures. It knows nothing of pools or the client registry: package
// proxy decides what a logged-in client gets.
package login

import (
	"net"

	"go.uber.org/zap"

	"github.com/muxpg/mux/internal/ldap"
	"github.com/muxpg/mux/internal/wire"
)

// Conn is a client connection during login (client <-> proxy). It is used
// by the login's goroutine alone: nothing else writes to a client before
// login registers it.
type Conn struct {
	// Conn is the socket, replaced by the *tls.Conn once TLS is on.
	net.Conn
	// TLS reports whether the connection is encrypted.
	TLS bool
	// ScramKey is the ClientKey the client's SCRAM proof showed, for
	// SCRAM pass-through to Postgres; nil for other methods.
	ScramKey *[32]byte
	// SCRAMIterations is what the SCRAM exchange of a user mux does not
	// know announces (scram_iterations); < 1: auth.DefaultSCRAMIterations.
	SCRAMIterations int
	// LDAP is auth_ldap_options, for auth_type ldap (nil: not set).
	LDAP *ldap.Options
	// LDAPPassword is the password an LDAP server accepted ("" otherwise).
	LDAPPassword string
	// Log, if set, is where LDAP failures are explained (the client is
	// told only that the login failed).
	Log *zap.Logger
}

// NewConn wraps an accepted client connection.
func NewConn(c net.Conn) *Conn { return &Conn{Conn: c} }

// WriteMsg sends one protocol message to the client.
func (c *Conn) WriteMsg(m interface{ Encode([]byte) ([]byte, error) }) error {
	_, err := c.Write(wire.AppendMessage(nil, m))
	return err
}

// IsUnix reports whether c came in on the Unix socket: there TLS is never
// offered nor required, as in PostgreSQL.
func (c *Conn) IsUnix() bool {
	return c.LocalAddr().Network() == "unix"
}

func quote(s string) string { return `"` + s + `"` }
