package proxy

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

// scramIterations is the iteration count for SCRAM secrets mux derives from
// plain-text passwords; PostgreSQL's default scram_iterations.
const scramIterations = 4096

// userEntry is a configured user with its secrets prepared for each method.
type userEntry struct {
	name     string
	password string // as configured: plain, md5 or SCRAM secret
	secret   auth.Secret

	scramOnce sync.Once
	scram     *auth.SCRAMSecret // nil: cannot do SCRAM (md5 secret only)
	fromQuery bool              // found by auth_query, not in [users]
}

func newUserEntry(name string, u config.User) (*userEntry, error) {
	sec, err := auth.ParseSecret(u.Password)
	if err != nil {
		return nil, fmt.Errorf("users.%s.password: %w", name, err)
	}
	return &userEntry{name: name, password: u.Password, secret: sec}, nil
}

// scramSecret returns the SCRAM secret to check this user against, deriving
// one (random salt) from a plain-text password the first time.
func (u *userEntry) scramSecret() *auth.SCRAMSecret {
	u.scramOnce.Do(func() {
		switch u.secret.Kind {
		case auth.SecretSCRAM:
			u.scram = u.secret.SCRAM
		case auth.SecretPlain:
			salt := make([]byte, 16)
			_, _ = rand.Read(salt)
			u.scram = auth.NewSCRAMSecret(u.secret.Plain, salt, scramIterations)
		}
	})
	return u.scram
}

// md5Secret returns the md5 secret for this user, or "" if only a SCRAM
// secret is known.
func (u *userEntry) md5Secret() string {
	switch u.secret.Kind {
	case auth.SecretMD5:
		return u.secret.MD5
	case auth.SecretPlain:
		return auth.MD5Secret(u.name, u.secret.Plain)
	}
	return ""
}

func authFailed(user string) *wire.Error {
	return wire.Fatal(wire.CodeInvalidPassword, "password authentication failed for user %s", quote(user))
}

// authenticate runs the client-side password exchange. u is nil for an
// unknown user: with md5 or SCRAM the exchange still runs (a mock one) so
// that an unknown user cannot be told from a wrong password. cb is the
// channel binding data SCRAM-SHA-256-PLUS is offered with (channelBinding;
// nil: not offered).
func (c *clientConn) authenticate(authType, user string, u *userEntry, cb []byte) error {
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
	default:
		var sec *auth.SCRAMSecret
		if u != nil {
			sec = u.scramSecret()
		}
		return c.authSCRAM(user, sec, cb)
	}
}

func (c *clientConn) authMD5(user string, u *userEntry) error {
	var salt [4]byte
	_, _ = rand.Read(salt[:])
	if err := c.writeMsg(&pgproto3.AuthenticationMD5Password{Salt: salt}); err != nil {
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

func (c *clientConn) authSCRAM(user string, sec *auth.SCRAMSecret, cb []byte) error {
	var srv *auth.SCRAMServer
	if sec != nil {
		srv = auth.NewSCRAMServer(sec)
	} else {
		srv = auth.NewMockSCRAMServer(user)
	}
	if cb != nil {
		srv.SetChannelBinding(cb) // offers SCRAM-SHA-256-PLUS first
	}
	if err := c.writeMsg(&pgproto3.AuthenticationSASL{AuthMechanisms: srv.Mechanisms()}); err != nil {
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
	if err := c.writeMsg(&pgproto3.AuthenticationSASLContinue{Data: first}); err != nil {
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
		c.scramKey = &key // for SCRAM pass-through to Postgres
	}
	return c.writeMsg(&pgproto3.AuthenticationSASLFinal{Data: final})
}

// readAuthMessage reads one 'p' message (password or SASL response) during
// login.
func (c *clientConn) readAuthMessage() ([]byte, error) {
	var hdr [5]byte
	if _, err := io.ReadFull(c.conn, hdr[:]); err != nil {
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
	if _, err := io.ReadFull(c.conn, body); err != nil {
		return nil, err
	}
	return body, nil
}
