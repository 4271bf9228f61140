package login

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
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
	conn := hba.Conn{Local: c.IsUnix(), TLS: c.TLS, Database: st.Database, User: st.User,
		Replication: st.Replication == PhysicalReplication}
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
	if r == nil && conn.Replication {
		return true, wire.Fatal(wire.CodeInvalidAuthorization, "no pg_hba.conf entry for replication connection from host %s, user %s, %s (auth_hba_file)",
			quote(host), quote(st.User), enc)
	}
	if r == nil {
		return true, wire.Fatal(wire.CodeInvalidAuthorization, "no pg_hba.conf entry for host %s, user %s, database %s, %s (auth_hba_file)",
			quote(host), quote(st.User), quote(st.Database), enc)
	}
	if err := c.checkClientCert(r, f.Maps, st.User); err != nil {
		return true, err
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
		return true, c.authCert(st.User, u) // checkClientCert has checked the name
	case hba.Peer:
		return true, c.authPeer(r, f.Maps, st.User, u)
	case hba.LDAP:
		return true, c.authLDAP(r.LDAP, st.User)
	}
	return true, wire.Fatal(wire.CodeInvalidAuthorization, "unsupported authentication method %q in auth_hba_file line %d", r.Method, r.Line)
}

// authCleartext asks for the password in clear (method "password"; use it
// only over TLS) and checks it against any kind of secret.
func (c *Conn) authCleartext(name string, u *User) error {
	pw, err := c.askPassword()
	if err != nil {
		return err
	}
	if u == nil || !passwordMatches(u, pw) {
		return authFailed(name)
	}
	return nil
}

// askPassword asks the client for its password in clear and reads it.
func (c *Conn) askPassword() (string, error) {
	if err := c.WriteMsg(&pgproto3.AuthenticationCleartextPassword{}); err != nil {
		return "", err
	}
	body, err := c.readAuthMessage()
	if err != nil {
		return "", err
	}
	if n := len(body); n > 0 && body[n-1] == 0 {
		body = body[:n-1]
	}
	return string(body), nil
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

// authCert accepts a client whose verified TLS certificate names the
// user; checkClientCert has checked the certificate and the name.
func (c *Conn) authCert(name string, u *User) error {
	if u == nil {
		return wire.Fatal(wire.CodeInvalidAuthorization, "role %s does not exist", quote(name))
	}
	return nil
}

// checkClientCert enforces a rule's client certificate requirement before
// its method runs, as Postgres does: clientcert=verify-ca asks for a
// certificate signed by client_tls_ca_file, verify-full (and method cert)
// also for the user name in it, as its CN or, with clientname=DN, its
// whole subject (RFC 2253), or, with map=, for a line of that user name
// map letting that name log in as the user.
func (c *Conn) checkClientCert(r *hba.Rule, maps *hba.Ident, name string) error {
	mode := r.Options["clientcert"]
	if r.Method == hba.Cert {
		mode = "verify-full"
	}
	if mode == "" {
		return nil
	}
	cert := c.verifiedCert()
	if cert == nil {
		return wire.Fatal(wire.CodeInvalidAuthorization,
			"connection requires a valid client certificate (auth_hba_file line %d; mux asks for one when client_tls_ca_file is set)", r.Line)
	}
	if mode != "verify-full" {
		return nil
	}
	got := cert.Subject.CommonName
	if r.Options["clientname"] == "DN" {
		got = cert.Subject.String()
	}
	if m, ok := r.Options["map"]; ok {
		return checkMap(r, maps, m, got, name, "certificate")
	}
	if got != name {
		return wire.Fatal(wire.CodeInvalidAuthorization, "certificate authentication failed for user %s: the certificate names %s (auth_hba_file line %d)",
			quote(name), quote(got), r.Line)
	}
	return nil
}

// verifiedCert returns the client's certificate if the TLS handshake
// verified it against client_tls_ca_file, else nil.
func (c *Conn) verifiedCert() *x509.Certificate {
	tc, ok := c.Conn.(*tls.Conn)
	if !ok {
		return nil
	}
	chains := tc.ConnectionState().VerifiedChains
	if len(chains) == 0 || len(chains[0]) == 0 {
		return nil
	}
	return chains[0][0]
}

// authPeer accepts a Unix-socket client whose operating-system user (from
// SO_PEERCRED) has the requested name or, with map=, may log in as it by
// that user name map.
func (c *Conn) authPeer(r *hba.Rule, maps *hba.Ident, name string, u *User) error {
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
	if m, ok := r.Options["map"]; ok {
		if err := checkMap(r, maps, m, osUser.Username, name, "Peer"); err != nil {
			return err
		}
	} else if osUser.Username != name {
		return wire.Fatal(wire.CodeInvalidAuthorization, "Peer authentication failed for user %s: the connecting process runs as %s", quote(name), quote(osUser.Username))
	}
	if u == nil {
		return wire.Fatal(wire.CodeInvalidAuthorization, "role %s does not exist", quote(name))
	}
	return nil
}

// checkMap refuses a login as user unless a line of the user name map m
// lets system (the certificate's name, or the OS user) log in as it; what
// is the method's name for the message, as Postgres words it.
func checkMap(r *hba.Rule, maps *hba.Ident, m, system, user, what string) error {
	if maps.Allows(m, system, user) != nil {
		return nil
	}
	return wire.Fatal(wire.CodeInvalidAuthorization, "%s authentication failed for user %s: no match in usermap %s for user %s authenticated as %s (auth_hba_file line %d, auth_ident_file)",
		what, quote(user), quote(m), quote(user), quote(system), r.Line)
}
