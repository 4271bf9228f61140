package config

import (
	"regexp"

	"github.com/BurntSushi/toml"

	"github.com/muxpg/mux/internal/ldap"
)

// checkLDAP parses auth_ldap_options (required by auth_type ldap) so that
// a mistake shows at load, not at the first login.
func (c *Config) checkLDAP(ck *checker) {
	key := toml.Key{"auth_ldap_options"}
	switch {
	case c.AuthLDAPOptions != "":
		if _, err := ldap.ParseOptions(c.AuthLDAPOptions); err != nil {
			ck.add(key, "%v", err)
		}
	case c.AuthType == AuthLDAP:
		ck.add(key, "must be set when auth_type is ldap (for example ldapurl=\"ldap://ldap.example.net/dc=example,dc=net?uid?sub\")")
	}
	if c.AuthType == AuthLDAP && c.AuthUser != "" {
		ck.add(toml.Key{"auth_user"}, "cannot be used with auth_type ldap (as in PgBouncer): LDAP checks the password, and mux logs in to Postgres with the one the client gave")
	}
}

// LDAPOptions returns auth_ldap_options parsed, or nil if it is not set.
// Validate has checked it.
func (c *Config) LDAPOptions() *ldap.Options {
	if c.AuthLDAPOptions == "" {
		return nil
	}
	o, err := ldap.ParseOptions(c.AuthLDAPOptions)
	if err != nil {
		return nil
	}
	return o
}

// ldapBindPasswd matches ldapbindpasswd and its value, quoted or not.
var ldapBindPasswd = regexp.MustCompile(`ldapbindpasswd=("(?:[^"]|"")*"?|[^\s,]*)`)

// redactLDAPOptions hides ldapbindpasswd's value in auth_ldap_options.
func redactLDAPOptions(s string) string {
	return ldapBindPasswd.ReplaceAllString(s, "ldapbindpasswd=***")
}
