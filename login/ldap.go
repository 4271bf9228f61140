package login

import (
	"context"
	"errors"
	"time"

	"go.uber.org/zap"

	"github.com/muxpg/mux/auth"
	"github.com/muxpg/mux/internal/ldap"
	"github.com/muxpg/mux/internal/wire"
)

// ldapTimeout bounds one LDAP check (connect, binds, search): a slow LDAP
// server must not hold a login for ever. client_login_timeout still
// bounds the client's side.
const ldapTimeout = 15 * time.Second

// NewLDAPUser is the entry of a user LDAP let in who has no password of
// its own in [users] or auth_file: mux logs in to Postgres with the
// password the client gave (as PgBouncer does).
func NewLDAPUser(name, password string) *User {
	return &User{Name: name, Password: password, Secret: auth.Secret{Kind: auth.SecretPlain, Plain: password}, FromLDAP: true}
}

// authLDAP asks for the password in clear (use client TLS) and checks it
// by binding to the LDAP server o names as the user, as PostgreSQL's ldap
// method does. On success the password is kept in c.LDAPPassword, for
// logging in to Postgres.
func (c *Conn) authLDAP(o *ldap.Options, name string) error {
	if o == nil {
		return wire.Fatal(wire.CodeInvalidAuthorization, "LDAP authentication is not configured: set auth_ldap_options")
	}
	pw, err := c.askPassword()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), ldapTimeout)
	defer cancel()
	err = ldap.Authenticate(ctx, o, name, pw)
	if err == nil {
		c.LDAPPassword = pw
		return nil
	}
	we := wire.Fatal(wire.CodeInvalidAuthorization, "LDAP authentication failed for user %s", quote(name))
	rejected := errors.Is(err, ldap.ErrRejected)
	if !rejected {
		we.Detail = "mux could not check the password with the LDAP server"
	}
	if c.Log != nil {
		log := c.Log.Named("ldap")
		if rejected {
			log.Info("LDAP authentication failed", zap.String("user", name), zap.Error(err))
		} else {
			log.Warn("LDAP server error", zap.String("user", name), zap.Error(err))
		}
	}
	return we
}
