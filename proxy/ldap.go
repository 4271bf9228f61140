package proxy

import (
	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/login"
)

// ldapUser returns the user a login LDAP let in goes on as: the
// configured one if it has a password of its own (mux logs in to
// Postgres with it), else an entry holding the password the client gave
// (as PgBouncer does). Logins by other methods keep u.
func ldapUser(lg *login.Conn, name string, u *login.User) *login.User {
	if lg.LDAPPassword == "" || (u != nil && u.Password != "" && !u.FromQuery) {
		return u
	}
	return login.NewLDAPUser(name, lg.LDAPPassword)
}

// useLDAPPassword makes the pool log in with the password an LDAP client
// gave, unless the database entry names its own credentials: a pool made
// by an earlier client must follow a changed password.
func (c *clientConn) useLDAPPassword(db config.Database, u *login.User) {
	if u != nil && u.FromLDAP && db.User == "" && db.Password == "" {
		c.pool.SetClientPassword(u.Password)
	}
}
