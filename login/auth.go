package login

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/muxpg/mux/auth"
	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/wire"
)

// maxAuthMessageLen is PostgreSQL's PG_MAX_AUTH_TOKEN_LENGTH
// (src/include/libpq/auth.h): the longest password or SASL message a
// client may send.
const maxAuthMessageLen = 65535

// User is a user mux authenticates, with its secrets prepared for each
// method. It is read-only once made, and shared by logins.
type User struct {
	Name      string
	Password  string // as configured: plain, md5 or SCRAM secret
	Secret    auth.Secret
	FromQuery bool // found by auth_query, not in [users]
	FromLDAP  bool // let in by LDAP, with the client's password (NewLDAPUser)
	// SCRAMIterations is the iteration count of the SCRAM secret derived
	// from a plain-text password (scram_iterations); < 1 means
	// auth.DefaultSCRAMIterations. Set before the user is shared.
	SCRAMIterations int

	scramOnce sync.Once
	scram     *auth.SCRAMSecret // nil: cannot do SCRAM (md5 secret only)
}

// NewUser prepares a configured user (or one auth_query found).
func NewUser(name string, u config.User) (*User, error) {
	sec, err := auth.ParseSecret(u.Password)
	if err != nil {
		return nil, fmt.Errorf("users.%s.password: %w", name, err)
	}
	return &User{Name: name, Password: u.Password, Secret: sec}, nil
}

// scramSecret returns the SCRAM secret to check this user against, deriving
// one (random salt) from a plain-text password the first time.
func (u *User) scramSecret() *auth.SCRAMSecret {
	u.scramOnce.Do(func() {
		switch u.Secret.Kind {
		case auth.SecretSCRAM:
			u.scram = u.Secret.SCRAM
		case auth.SecretPlain:
			salt := make([]byte, 16)
			_, _ = rand.Read(salt)
			u.scram = auth.NewSCRAMSecret(u.Secret.Plain, salt, u.SCRAMIterations)
		}
	})
	return u.scram
}

// md5Secret returns the md5 secret for this user, or "" if only a SCRAM
// secret is known.
func (u *User) md5Secret() string {
	switch u.Secret.Kind {
	case auth.SecretMD5:
		return u.Secret.MD5
	case auth.SecretPlain:
		return auth.MD5Secret(u.Name, u.Secret.Plain)
	}
	return ""
}

func authFailed(user string) *wire.Error {
	return wire.Fatal(wire.CodeInvalidPassword, "password authentication failed for user %s", quote(user))
}

// Authenticate runs the client-side password exchange. u is nil for an
// unknown user: with md5 or SCRAM the exchange still runs (a mock one) so
// that an unknown user cannot be told from a wrong password. cb is the
// channel binding data SCRAM-SHA-256-PLUS is offered with (ChannelBinding;
// nil: not offered).
func (c *Conn) Authenticate(authType, user string, u *User, cb []byte) error {
	switch authType {
	case config.AuthTrust:
		if u == nil {
			return wire.Fatal(wire.CodeInvalidAuthorization, "role %s does not exist", quote(user))
		}
		return nil
	case config.AuthMD5:
		if u != nil && u.md5Secret() == "" && u.scramSecret() != nil {
			// As in PostgreSQL: md5 is satisfied by SCRAM when only a SCRAM
			// secret is stored.
			return c.authSCRAM(user, u.scramSecret(), cb)
		}
		return c.authMD5(user, u)
	case config.AuthLDAP:
		return c.authLDAP(c.LDAP, user) // unknown users too: LDAP knows them
	default:
		var sec *auth.SCRAMSecret
		if u != nil {
			sec = u.scramSecret()
		}
		return c.authSCRAM(user, sec, cb)
	}
}

func (c *Conn) authMD5(user string, u *User) error {
	var salt [4]byte
	_, _ = rand.Read(salt[:])
	if err := c.WriteMsg(&pgproto3.AuthenticationMD5Password{Salt: salt}); err != nil {
		return err
	}
	body, err := c.readAuthMessage()
	if err != nil {
		return err
	}
	resp := body
	if n := len(resp); n > 0 && resp[n-1] == 0 {
		resp = resp[:n-1]
	}
	if u == nil || !auth.CheckMD5(u.md5Secret(), salt, string(resp)) {
		return authFailed(user)
	}
	return nil
}

func (c *Conn) authSCRAM(user string, sec *auth.SCRAMSecret, cb []byte) error {
	var srv *auth.SCRAMServer
	if sec != nil {
		srv = auth.NewSCRAMServer(sec)
	} else {
		srv = auth.NewMockSCRAMServer(user)
		srv.SetMockIterations(c.SCRAMIterations)
	}
	if cb != nil {
		srv.SetChannelBinding(cb) // offers SCRAM-SHA-256-PLUS first
	}
	if err := c.WriteMsg(&pgproto3.AuthenticationSASL{AuthMechanisms: srv.Mechanisms()}); err != nil {
		return err
	}
	body, err := c.readAuthMessage()
	if err != nil {
		return err
	}
	var init pgproto3.SASLInitialResponse
	if err := init.Decode(body); err != nil {
		return wire.Fatal(wire.CodeProtocolViolation, "malformed SASL initial response")
	}
	if srv.SelectMechanism(init.AuthMechanism) != nil {
		return wire.Fatal(wire.CodeProtocolViolation, "client selected an invalid SASL authentication mechanism")
	}
	first, err := srv.HandleClientFirst(init.Data)
	if errors.Is(err, auth.ErrChannelBinding) {
		return wire.Fatal(wire.CodeInvalidAuthorization, "%v", err)
	}
	if err != nil {
		return wire.Fatal(wire.CodeProtocolViolation, "%v", err)
	}
	if err := c.WriteMsg(&pgproto3.AuthenticationSASLContinue{Data: first}); err != nil {
		return err
	}
	body, err = c.readAuthMessage()
	if err != nil {
		return err
	}
	final, err := srv.HandleClientFinal(body)
	if errors.Is(err, auth.ErrChannelBinding) {
		return wire.Fatal(wire.CodeInvalidAuthorization, "%v", err)
	}
	if errors.Is(err, auth.ErrAuthFailed) {
		return authFailed(user)
	}
	if err != nil {
		return wire.Fatal(wire.CodeProtocolViolation, "%v", err)
	}
	if key, ok := srv.ClientKey(); ok {
		c.ScramKey = &key // for SCRAM pass-through to Postgres
	}
	return c.WriteMsg(&pgproto3.AuthenticationSASLFinal{Data: final})
}

// readAuthMessage reads one 'p' message (password or SASL response) during
// login.
func (c *Conn) readAuthMessage() ([]byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(c, hdr[:]); err != nil {
		return nil, err
	}
	l := int(binary.BigEndian.Uint32(hdr[1:]))
	if hdr[0] != 'p' {
		return nil, wire.Fatal(wire.CodeProtocolViolation, "expected password response, got message type %d", hdr[0])
	}
	if l < 4 || l-4 > maxAuthMessageLen {
		return nil, wire.Fatal(wire.CodeProtocolViolation, "invalid password packet size")
	}
	body := make([]byte, l-4)
	if _, err := io.ReadFull(c, body); err != nil {
		return nil, err
	}
	return body, nil
}
