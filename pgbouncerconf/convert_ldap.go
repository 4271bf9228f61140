package pgbouncerconf

import (
	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/ldap"
)

// ldapOptions carries auth_ldap_options as it is (mux reads PgBouncer's
// syntax) when auth_type is ldap, the only case PgBouncer reads it in.
// Notes and errors never repeat the value: it may hold ldapbindpasswd.
// typeKV is auth_type's line.
func (c *converter) ldapOptions(typeKV KV) {
	opts, kv, ok := c.value("auth_ldap_options", "")
	switch {
	case c.authType != config.AuthLDAP:
		if opts != "" {
			c.note("auth_ldap_options (%s): not used, because auth_type is not ldap", c.where(kv))
		}
		opts, ok = "", false
	case opts == "":
		c.fail(typeKV, "auth_type = ldap needs auth_ldap_options")
	default:
		if _, err := ldap.ParseOptions(opts); err != nil {
			c.fail(kv, "%v", err)
		}
	}
	c.addString("auth_ldap_options", opts, c.origin(kv, ok), kv)
}

// emptyPasswordOK reports whether a user may be carried without a
// password: with trust none is asked, and with ldap mux logs in to
// Postgres with the one the client gave.
func (c *converter) emptyPasswordOK() bool {
	return c.authType == config.AuthTrust || c.authType == config.AuthLDAP
}
