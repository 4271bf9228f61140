package login

import (
	"crypto/subtle"
	"crypto/tls"
	"net"
	"os/user"
	"strconv"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/muxpg/mux/auth"
	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/hba"
	"github.com/muxpg/mux/internal/wire"
)

// HBAAuthenticate authenticates a client by the first rule of f (the
// login's auth_hba_file) matching its connection; cb is as for
// Authenticate. It reports false when no file is configured.
func (c *Conn) HBAAuthenticate(f *hba.File, st *Startup, u *User, cb []byte) (bool, error) {
	if f == nil {
		return false, nil
	}
	conn := hba.Conn{Local: c.IsUnix(), TLS: c.TLS, Database: st.Database, User: st.User}
	host := "[local]"
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		conn.Addr = a.IP
		host = a.IP.String()
	}
	enc := "no encryption"
	if c.TLS {
		enc = "SSL encryption"
	}
	r := f.Match(conn)
	if r == nil {
		return true, wire.Fatal(wire.CodeInvalidAuthorization, "no pg_hba.conf entry for host %s, user %s, database %s, %s (auth_hba_file)",
			quote(host), quote(st.User), quote(st.Database), enc)
	}
	switch r.Method {
	case hba.Reject:
		return true, wire.Fatal(wire.CodeInvalidAuthorization, "pg_hba.conf rejects connection for host %s, user %s, database %s, %s (auth_hba_file line %d)",
			quote(host), quote(st.User), quote(st.Database), enc, r.Line)
	case hba.Trust:
		return true, c.Authenticate(config.AuthTrust, st.User, u, cb)
	case hba.MD5:
		return true, c.Authenticate(config.AuthMD5, st.User, u, cb)
	case hba.ScramSHA256:
		return true, c.Authenticate(config.AuthSCRAM, st.User, u, cb)
	case hba.Password:
		return true, c.authCleartext(st.User, u)
	case hba.Cert:
		return true, c.authCert(st.User, u)
	case hba.Peer:
		return true, c.authPeer(st.User, u)
	}
	return true, wire.Fatal(wire.CodeInvalidAuthorization, "unsupported authentication method %q in auth_hba_file line %d", r.Method, r.Line)
}

// authCleartext asks for the password in clear (method "password"; use it
// only over TLS) and checks it against any kind of secret.
func (c *Conn) authCleartext(name string, u *User) error {
	if err := c.WriteMsg(&pgproto3.AuthenticationCleartextPassword{}); err != nil {
		return err
	}
	body, err := c.readAuthMessage()
	if err != nil {
		return err
	}
	if n := len(body); n > 0 && body[n-1] == 0 {
		body = body[:n-1]
	}
	if u == nil || !passwordMatches(u, string(body)) {
		return authFailed(name)
	}
	return nil
}

func passwordMatches(u *User, pw string) bool {
	switch u.Secret.Kind {
	case auth.SecretPlain:
		return subtle.ConstantTimeCompare([]byte(pw), []byte(u.Secret.Plain)) == 1
	case auth.SecretMD5:
		return subtle.ConstantTimeCompare([]byte(auth.MD5Secret(u.Name, pw)), []byte(u.Secret.MD5)) == 1
	case auth.SecretSCRAM:
		sec := u.Secret.SCRAM
		got := auth.NewSCRAMSecret(pw, sec.Salt, sec.Iterations)
		return subtle.ConstantTimeCompare(got.StoredKey[:], sec.StoredKey[:]) == 1 &&
			subtle.ConstantTimeCompare(got.ServerKey[:], sec.ServerKey[:]) == 1
	}
	return false
}

// authCert accepts a client whose TLS certificate (verified against
// client_tls_ca_file) has the user name as its CN.
func (c *Conn) authCert(name string, u *User) error {
	tc, ok := c.Conn.(*tls.Conn)
	if !ok {
		return wire.Fatal(wire.CodeInvalidAuthorization, "certificate authentication failed for user %s: the connection is not encrypted", quote(name))
	}
	certs := tc.ConnectionState().VerifiedChains
	if len(certs) == 0 || len(certs[0]) == 0 {
		return wire.Fatal(wire.CodeInvalidAuthorization,
			"certificate authentication failed for user %s: no verified client certificate (client_tls_sslmode must be verify-ca or verify-full)", quote(name))
	}
	if cn := certs[0][0].Subject.CommonName; cn != name {
		return wire.Fatal(wire.CodeInvalidAuthorization, "certificate authentication failed for user %s: the certificate's CN is %s", quote(name), quote(cn))
	}
	if u == nil {
		return wire.Fatal(wire.CodeInvalidAuthorization, "role %s does not exist", quote(name))
	}
	return nil
}

// authPeer accepts a Unix-socket client whose operating-system user (from
// SO_PEERCRED) has the requested name.
func (c *Conn) authPeer(name string, u *User) error {
	uc, ok := c.Conn.(*net.UnixConn)
	if !ok {
		return wire.Fatal(wire.CodeInvalidAuthorization, "peer authentication failed for user %s: not a Unix-socket connection", quote(name))
	}
	uid, credErr := peerUID(uc)
	if credErr != nil {
		return wire.Fatal(wire.CodeInvalidAuthorization, "peer authentication failed for user %s: %v", quote(name), credErr)
	}
	osUser, err := user.LookupId(strconv.Itoa(int(uid)))
	if err != nil {
		return wire.Fatal(wire.CodeInvalidAuthorization, "peer authentication failed for user %s: local user with ID %d does not exist", quote(name), uid)
	}
	if osUser.Username != name {
		return wire.Fatal(wire.CodeInvalidAuthorization, "Peer authentication failed for user %s: the connecting process runs as %s", quote(name), quote(osUser.Username))
	}
	if u == nil {
		return wire.Fatal(wire.CodeInvalidAuthorization, "role %s does not exist", quote(name))
	}
	return nil
}
