package ldap

import (
	"crypto/x509"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

// Default ports (RFC 4516's ldap and ldaps).
const (
	defaultPort    = 389
	defaultTLSPort = 636
)

// Options are the LDAP settings of PgBouncer's auth_ldap_options or of an
// auth_hba_file ldap row, under PostgreSQL's names (pg_hba.conf's ldap*
// options). Either Prefix/Suffix are set (simple bind: the user's DN is
// Prefix + user name + Suffix) or BaseDN is (search+bind: mux binds as
// BindDN, or anonymously, finds the user's entry under BaseDN and binds
// as it). Read-only once parsed.
type Options struct {
	Scheme          string   // "ldap" (default) or "ldaps"
	Servers         []string // host names or addresses, tried in turn
	Port            int      // 0: 389, or 636 with ldaps
	StartTLS        bool     // ldaptls=1: StartTLS before binding
	Prefix, Suffix  string   // simple bind
	BaseDN          string   // search+bind
	BindDN          string   // "" binds anonymously for the search
	BindPasswd      string   // secret
	SearchAttribute string   // default uid
	SearchFilter    string   // with $username; excludes SearchAttribute
	Scope           int      // ScopeSub unless ldapurl says otherwise
	// RootCAs verify the server's TLS certificate; nil: the system's
	// (no option sets it: PostgreSQL leaves this to libldap's ldap.conf).
	RootCAs *x509.CertPool
}

// OptionNames are the option names accepted, as in pg_hba.conf.
var OptionNames = []string{
	"ldapbasedn", "ldapbinddn", "ldapbindpasswd", "ldapport", "ldapprefix",
	"ldapscheme", "ldapsearchattribute", "ldapsearchfilter", "ldapserver",
	"ldapsuffix", "ldaptls", "ldapurl",
}

// usernamePlaceholder is what ldapsearchfilter replaces by the user name,
// as PostgreSQL does.
const usernamePlaceholder = "$username"

// ParseOptions reads an auth_ldap_options string: key=value pairs
// separated by blanks or commas, a value in double quotes holding blanks
// and commas, "" in quotes standing for one quote (PgBouncer's format,
// e.g. `ldapserver=ldap.example.net ldapprefix="cn=" ldapsuffix=",dc=example,dc=net"`).
func ParseOptions(s string) (*Options, error) {
	o := &Options{Scope: ScopeSub}
	seen := map[string]bool{}
	rest := strings.TrimSpace(s)
	for rest != "" {
		key, val, next, err := nextOption(rest)
		if err != nil {
			return nil, err
		}
		if seen[key] {
			return nil, fmt.Errorf("LDAP option %q given more than once", key)
		}
		seen[key] = true
		if err := o.set(key, val); err != nil {
			return nil, err
		}
		rest = strings.TrimLeft(next, " \t\r\n,")
	}
	if len(seen) == 0 {
		return nil, errors.New("no LDAP options given")
	}
	return o, o.validate()
}

// FromMap builds Options from the ldap* options of an auth_hba_file row
// (the hba parser has removed the quotes). ldapurl is applied first, so
// that the other options refine it.
func FromMap(m map[string]string) (*Options, error) {
	o := &Options{Scope: ScopeSub}
	if u, ok := m["ldapurl"]; ok {
		if err := o.setURL(u); err != nil {
			return nil, err
		}
	}
	for _, k := range slices.Sorted(maps.Keys(m)) {
		if k == "ldapurl" {
			continue
		}
		if err := o.set(k, m[k]); err != nil {
			return nil, err
		}
	}
	return o, o.validate()
}

// nextOption reads one key=value from the start of s.
func nextOption(s string) (key, val, rest string, err error) {
	eq := strings.IndexByte(s, '=')
	if eq <= 0 {
		return "", "", "", fmt.Errorf("LDAP option not in key=value form: %q", s)
	}
	key = s[:eq]
	if strings.ContainsAny(key, " \t\r\n,\"") {
		return "", "", "", fmt.Errorf("LDAP option not in key=value form: %q", key)
	}
	s = s[eq+1:]
	if !strings.HasPrefix(s, `"`) {
		end := strings.IndexAny(s, " \t\r\n,")
		if end < 0 {
			end = len(s)
		}
		if end == 0 {
			return "", "", "", fmt.Errorf("LDAP option %q has no value", key)
		}
		return key, s[:end], s[end:], nil
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		if s[i] != '"' {
			b.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '"' {
			b.WriteByte('"')
			i++
			continue
		}
		if b.Len() == 0 {
			return "", "", "", fmt.Errorf("LDAP option %q has no value", key)
		}
		return key, b.String(), s[i+1:], nil
	}
	return "", "", "", fmt.Errorf("LDAP option %q: unterminated quoted value", key)
}

// set applies one option.
func (o *Options) set(key, val string) error {
	switch key {
	case "ldapserver":
		o.Servers = strings.Fields(val)
	case "ldapport":
		p, err := strconv.Atoi(val)
		if err != nil || p < 1 || p > 65535 {
			return fmt.Errorf("invalid LDAP port number: %q", val)
		}
		o.Port = p
	case "ldapscheme":
		if val != "ldap" && val != "ldaps" {
			return fmt.Errorf("invalid ldapscheme value: %q (want ldap or ldaps)", val)
		}
		o.Scheme = val
	case "ldaptls":
		switch val {
		case "1":
			o.StartTLS = true
		case "0":
			o.StartTLS = false
		default:
			return fmt.Errorf("invalid ldaptls value: %q (want 1 or 0)", val)
		}
	case "ldapprefix":
		o.Prefix = val
	case "ldapsuffix":
		o.Suffix = val
	case "ldapbasedn":
		o.BaseDN = val
	case "ldapbinddn":
		o.BindDN = val
	case "ldapbindpasswd":
		o.BindPasswd = val
	case "ldapsearchattribute":
		o.SearchAttribute = val
	case "ldapsearchfilter":
		o.SearchFilter = val
	case "ldapurl":
		return o.setURL(val)
	default:
		return fmt.Errorf("unknown LDAP option %q (known: %s)", key, strings.Join(OptionNames, ", "))
	}
	return nil
}

// setURL applies an RFC 4516 URL: scheme://host:port/basedn?attribute?scope?filter.
func (o *Options) setURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("could not parse LDAP URL %q: %v", s, err)
	}
	if u.Scheme != "ldap" && u.Scheme != "ldaps" {
		return fmt.Errorf("unsupported LDAP URL scheme: %q", u.Scheme)
	}
	o.Scheme = u.Scheme
	if h := u.Hostname(); h != "" {
		o.Servers = []string{h}
	}
	if p := u.Port(); p != "" {
		if err := o.set("ldapport", p); err != nil {
			return err
		}
	}
	o.BaseDN = strings.TrimPrefix(u.Path, "/")
	parts := strings.Split(u.RawQuery, "?")
	for i, part := range parts {
		if parts[i], err = url.PathUnescape(part); err != nil {
			return fmt.Errorf("could not parse LDAP URL %q: %v", s, err)
		}
	}
	if len(parts) > 0 && parts[0] != "" {
		o.SearchAttribute, _, _ = strings.Cut(parts[0], ",") // the first one only
	}
	if len(parts) > 1 {
		switch parts[1] {
		case "", "sub":
			o.Scope = ScopeSub
		case "one":
			o.Scope = ScopeOne
		case "base":
			o.Scope = ScopeBase
		default:
			return fmt.Errorf("invalid scope %q in LDAP URL %q (want base, one or sub)", parts[1], s)
		}
	}
	if len(parts) > 2 && parts[2] != "" {
		o.SearchFilter = parts[2]
	}
	if len(parts) > 3 && parts[3] != "" {
		return fmt.Errorf("LDAP URL %q: extensions are not supported", s)
	}
	return nil
}

// validate checks the combination, as PostgreSQL does when it loads
// pg_hba.conf.
func (o *Options) validate() error {
	if o.Prefix != "" || o.Suffix != "" {
		if o.BaseDN != "" || o.BindDN != "" || o.BindPasswd != "" || o.SearchAttribute != "" || o.SearchFilter != "" {
			return errors.New("cannot mix options for simple bind and search+bind modes (ldapprefix/ldapsuffix against ldapbasedn, ldapbinddn, ldapbindpasswd, ldapsearchattribute, ldapsearchfilter)")
		}
	} else if o.BaseDN == "" {
		return errors.New(`LDAP authentication requires "ldapbasedn", "ldapprefix", or "ldapsuffix" to be set`)
	}
	if o.SearchAttribute != "" && o.SearchFilter != "" {
		return errors.New("cannot use ldapsearchattribute together with ldapsearchfilter")
	}
	if len(o.Servers) == 0 {
		return errors.New("ldapserver (or a host in ldapurl) is required: mux does not look LDAP servers up in DNS")
	}
	if o.StartTLS && o.Scheme == "ldaps" {
		return errors.New("ldaptls=1 cannot be used with ldapscheme=ldaps (the connection is TLS already)")
	}
	if o.SearchFilter != "" {
		if _, err := encodeFilter(o.filterFor("user")); err != nil {
			return fmt.Errorf("ldapsearchfilter: %v", err)
		}
	}
	if o.SearchAttribute != "" && strings.ContainsAny(o.SearchAttribute, "()*\\= ") {
		return fmt.Errorf("invalid ldapsearchattribute %q", o.SearchAttribute)
	}
	return nil
}

// simpleBind reports whether the user's DN is Prefix + name + Suffix.
func (o *Options) simpleBind() bool { return o.BaseDN == "" }

// port returns the TCP port to dial.
func (o *Options) port() int {
	switch {
	case o.Port != 0:
		return o.Port
	case o.Scheme == "ldaps":
		return defaultTLSPort
	}
	return defaultPort
}

// attribute is the search attribute (uid by default).
func (o *Options) attribute() string {
	if o.SearchAttribute != "" {
		return o.SearchAttribute
	}
	return "uid"
}

// filterFor returns the search filter for user, whose name has been
// checked (validName).
func (o *Options) filterFor(user string) string {
	if o.SearchFilter != "" {
		return strings.ReplaceAll(o.SearchFilter, usernamePlaceholder, user)
	}
	return "(" + o.attribute() + "=" + user + ")"
}
