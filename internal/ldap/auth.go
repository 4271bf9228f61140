// Package ldap is a minimal LDAP client for checking a password the way
// PostgreSQL's ldap authentication does: a simple bind as the user's DN,
// found by prefix and suffix or by a search. It speaks LDAPv3 (RFC 4511)
// over TCP, ldaps or StartTLS.
package ldap

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// ErrRejected is wrapped by every error that says the user is not let
// in (wrong password, no such entry, a name that cannot be looked up);
// other errors mean the server could not be asked (unreachable, broken).
var ErrRejected = errors.New("LDAP authentication rejected")

// noAttributes asks a search for no attribute values (RFC 4511 section
// 4.5.1.8): only the entries' DNs are wanted.
const noAttributes = "1.1"

// badNameChars are refused in a user name before a search, as in
// PostgreSQL: they would let a name change the filter.
const badNameChars = "*()\\/\x00"

// Authenticate checks password for user against the server(s) o names.
// It returns nil if the server accepted the bind as the user's DN.
func Authenticate(ctx context.Context, o *Options, user, password string) error {
	if password == "" {
		// An empty password is an unauthenticated bind, which servers
		// accept: never treat it as a login (RFC 4513 section 5.1.2).
		return fmt.Errorf("%w: empty password", ErrRejected)
	}
	if !o.simpleBind() && strings.ContainsAny(user, badNameChars) {
		return fmt.Errorf("%w: invalid character in user name for LDAP authentication", ErrRejected)
	}
	c, err := dial(ctx, o)
	if err != nil {
		return err
	}
	defer c.close()
	dn := o.Prefix + user + o.Suffix
	if !o.simpleBind() {
		if dn, err = findUser(c, o, user); err != nil {
			return err
		}
	}
	res, err := c.bind(dn, password)
	if err != nil {
		return err
	}
	if res.code != resultSuccess {
		return fmt.Errorf("%w: LDAP login failed for user %q on server %s: %v", ErrRejected, dn, c.server, res)
	}
	return nil
}

// findUser binds as BindDN (or anonymously) and returns the DN of the one
// entry the search finds for user.
func findUser(c *conn, o *Options, user string) (string, error) {
	res, err := c.bind(o.BindDN, o.BindPasswd)
	if err != nil {
		return "", err
	}
	if res.code != resultSuccess {
		// The operator's settings are wrong, not the user's password.
		return "", fmt.Errorf("could not perform initial LDAP bind for ldapbinddn %q on server %s: %v", o.BindDN, c.server, res)
	}
	filter := o.filterFor(user)
	enc, err := encodeFilter(filter)
	if err != nil {
		return "", fmt.Errorf("%w: %v", ErrRejected, err)
	}
	dns, err := c.search(o.BaseDN, o.Scope, enc, noAttributes)
	if err != nil {
		return "", err
	}
	switch len(dns) {
	case 1:
		return dns[0], nil
	case 0:
		return "", fmt.Errorf("%w: LDAP user %q does not exist (search for filter %q on server %s returned no entries)", ErrRejected, user, filter, c.server)
	}
	return "", fmt.Errorf("%w: LDAP user %q is not unique (search for filter %q on server %s returned %d entries)", ErrRejected, user, filter, c.server, len(dns))
}
