package hba

import (
	"bytes"
	"net"
	"net/netip"
	"slices"
	"strings"
)

// Conn describes a client connection to find a rule for.
type Conn struct {
	Local    bool   // connected over the Unix socket; TLS and Addr are ignored
	TLS      bool   // TCP connection that negotiated TLS
	Addr     net.IP // TCP client address; IPv4 and IPv4-mapped IPv6 are the same
	Database string
	User     string
	// Replication marks a physical replication connection
	// ("replication=true"): only the database keyword "replication"
	// matches it, and "all" does not, as in Postgres. A logical one
	// ("replication=database") matches by its database, as any other.
	Replication bool
}

// Match returns the first rule matching c (first match wins), or nil: no rule matches (the caller refuses the connection, like Postgres: "no pg_hba.conf entry for host ...").
//
// The returned rule points into f.Rules. A rule whose method is Reject is
// returned like any other; the caller refuses the connection.
//
// Address ranges: an IPv4 range matches IPv4 clients, including ones that
// reached a dual-stack socket as IPv4-mapped IPv6 addresses (net.IP does not
// tell the two apart). An IPv6 range matches IPv6 clients only, so "::/0"
// does not match IPv4 clients, as in PostgreSQL; the exception is a range
// inside ::ffff:0:0/96, which is the IPv4 range it maps.
func (f *File) Match(c Conn) *Rule {
	if f == nil {
		return nil
	}
	for i := range f.Rules {
		if f.Rules[i].matches(c) {
			return &f.Rules[i]
		}
	}
	return nil
}

func (r *Rule) matches(c Conn) bool {
	switch r.Type {
	case Local:
		if !c.Local {
			return false
		}
	case Host:
		if c.Local {
			return false
		}
	case HostSSL:
		if c.Local || !c.TLS {
			return false
		}
	case HostNoSSL:
		if c.Local || c.TLS {
			return false
		}
	default:
		return false
	}
	if r.Type != Local && !addrMatches(r.Addr, c.Addr) {
		return false
	}
	return matchDatabase(r.Databases, c) && matchUser(r.Users, c.User)
}

func matchDatabase(list []string, c Conn) bool {
	db, user := c.Database, c.User
	for _, e := range list {
		if c.Replication {
			if e == "replication" {
				return true
			}
			continue
		}
		switch e {
		case "replication":
			// Only physical replication connections.
		case "all":
			return true
		case "sameuser":
			if db == user {
				return true
			}
		default:
			if nameIs(e, db) {
				return true
			}
		}
	}
	return false
}

func matchUser(list []string, user string) bool {
	for _, e := range list {
		if e == "all" || nameIs(e, user) {
			return true
		}
	}
	return false
}

// nameIs reports whether list entry e (bare or double-quoted) names name.
func nameIs(e, name string) bool {
	if strings.HasPrefix(e, `"`) {
		return unquoteName(e) == name
	}
	return e == name
}

var v4InV6Prefix = []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff}

func addrMatches(n *net.IPNet, ip net.IP) bool {
	if n == nil {
		return true
	}
	if ip == nil {
		return false
	}
	nip, mask := n.IP, n.Mask
	switch len(mask) {
	case net.IPv4len:
		nip = nip.To4()
	case net.IPv6len:
		nip = nip.To16()
		// A range inside ::ffff:0:0/96 is the IPv4 range it maps.
		if nip != nil && bytes.Equal(nip[:12], v4InV6Prefix) && allFF(mask[:12]) {
			nip, mask = nip[12:], mask[12:]
		}
	default:
		return false
	}
	if nip == nil {
		return false
	}
	var cip net.IP
	if len(nip) == net.IPv4len {
		cip = ip.To4()
	} else if ip.To4() == nil {
		cip = ip.To16()
	}
	if cip == nil {
		return false
	}
	for i := range nip {
		if cip[i]&mask[i] != nip[i]&mask[i] {
			return false
		}
	}
	return true
}

func allFF(b []byte) bool {
	for _, c := range b {
		if c != 0xff {
			return false
		}
	}
	return true
}

// String formats r as a line of a rules file. Parsing the line gives r back
// (apart from Line) for any rule Parse returned.
func (r *Rule) String() string {
	var b strings.Builder
	b.WriteString(r.Type.String())
	b.WriteByte(' ')
	b.WriteString(strings.Join(r.Databases, ","))
	b.WriteByte(' ')
	b.WriteString(strings.Join(r.Users, ","))
	if r.Type != Local {
		b.WriteByte(' ')
		b.WriteString(formatAddr(r.Addr))
	}
	b.WriteByte(' ')
	b.WriteString(string(r.Method))
	keys := make([]string, 0, len(r.Options))
	for k := range r.Options {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('=')
		v := r.Options[k]
		if needsQuote(v) {
			v = quote(v)
		}
		b.WriteString(v)
	}
	return b.String()
}

func formatAddr(n *net.IPNet) string {
	if n == nil {
		return "all"
	}
	ones, bits := n.Mask.Size()
	ip := n.IP
	if len(n.Mask) == net.IPv4len {
		ip = ip.To4()
	} else {
		ip = ip.To16()
	}
	a, ok := netip.AddrFromSlice(ip)
	if !ok || bits == 0 {
		return n.String() // not something Parse produces
	}
	return netip.PrefixFrom(a, ones).String()
}

// String formats f as a rules file, one rule per line.
func (f *File) String() string {
	var b strings.Builder
	for i := range f.Rules {
		b.WriteString(f.Rules[i].String())
		b.WriteByte('\n')
	}
	return b.String()
}
