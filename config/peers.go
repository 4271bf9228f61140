package config

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// A fleet is several mux instances behind one address (a load balancer, a
// Kubernetes Service). A client's CancelRequest travels on a connection of
// its own and may land on an instance other than the one serving the
// client; each instance names itself in the cancel keys it issues
// (peer_id) and forwards a request for another instance's key to that
// peer, found in [peers] or through peers_dns. The names follow
// PgBouncer's peering (peer_id, [peers] with host, port and pool_size).

const (
	// MaxPeerID is the largest peer_id: 14 bits, as PgBouncer's (the
	// instance field of a cancel key, package cancelkey).
	MaxPeerID = 16383
	// DefaultPeerPort is the port of a peer without port, and the default
	// peers_dns_port: mux's (and PgBouncer's) usual listen port.
	DefaultPeerPort = 6432
	// OrdinalPlaceholder and IDPlaceholder are replaced in peers_dns by a
	// peer's StatefulSet ordinal (peer_id - 1) and by its peer_id.
	OrdinalPlaceholder = "{ordinal}"
	IDPlaceholder      = "{id}"
)

// hostname is os.Hostname; tests replace it.
var hostname = os.Hostname

// PeerID is this instance's id in its fleet: 0 (no fleet, the default) or
// 1..MaxPeerID. In TOML it is an integer, or "ordinal": the trailing -N of
// the host name plus one, so that the pods mux-0, mux-1, mux-2 of a
// Kubernetes StatefulSet are instances 1, 2 and 3 with one config file.
type PeerID int

// UnmarshalTOML implements toml.Unmarshaler: an integer or "ordinal".
func (p *PeerID) UnmarshalTOML(v any) error {
	switch v := v.(type) {
	case int64:
		if v < 0 || v > MaxPeerID {
			return fmt.Errorf("%d is out of range 0..%d", v, MaxPeerID)
		}
		*p = PeerID(v)
		return nil
	case string:
		if !strings.EqualFold(strings.TrimSpace(v), "ordinal") {
			return fmt.Errorf("must be an integer 0..%d or \"ordinal\", not %q", MaxPeerID, v)
		}
		name, err := hostname()
		if err != nil {
			return fmt.Errorf("\"ordinal\": %v", err)
		}
		id, err := OrdinalID(name)
		if err != nil {
			return fmt.Errorf("\"ordinal\": %v", err)
		}
		*p = PeerID(id)
		return nil
	default:
		return fmt.Errorf("must be an integer 0..%d or \"ordinal\", not %s", MaxPeerID, tomlTypeName(v))
	}
}

// OrdinalID returns the peer_id of the pod called name in a StatefulSet:
// its ordinal (the number after the last '-') plus one. The first label
// of a fully qualified name is used.
func OrdinalID(name string) (int, error) {
	name, _, _ = strings.Cut(name, ".")
	i := strings.LastIndexByte(name, '-')
	n, err := strconv.Atoi(name[i+1:])
	if i < 0 || err != nil || n < 0 || strings.HasPrefix(name[i+1:], "+") {
		return 0, fmt.Errorf("host name %q does not end in -N (a StatefulSet pod's name, e.g. mux-0)", name)
	}
	if n >= MaxPeerID {
		return 0, fmt.Errorf("host name %q: ordinal %d is over %d", name, n, MaxPeerID-1)
	}
	return n + 1, nil
}

// Peer is one [peers.ID] entry: where the instance with that peer_id
// accepts CancelRequests.
type Peer struct {
	// Host is a host name or IP address, resolved at each forward, or a
	// Unix socket directory if it starts with "/" (the socket is
	// <host>/.s.PGSQL.<port>, as for a database).
	Host string `toml:"host"`
	// Port is the peer's listen port. Default 6432.
	Port int `toml:"port"`
	// PoolSize bounds the cancel requests in flight to the peer at once
	// (more wait, within the forward's timeout). 0 = default_pool_size.
	PoolSize int `toml:"pool_size"`
}

// PeerAddr is where to forward a cancel request for one peer.
type PeerAddr struct {
	Network, Address string
	// Host is the name TLS verifies (verify-full); "" for a Unix socket.
	Host     string
	PoolSize int
}

// LookupPeer returns the address of the instance with peer id: its
// [peers] entry, else the peers_dns name with the id filled in. It
// reports false for this instance's own id, for 0, and for an id neither
// names.
func (c *Config) LookupPeer(id int) (PeerAddr, bool) {
	if id <= 0 || id > MaxPeerID || id == int(c.PeerID) {
		return PeerAddr{}, false
	}
	if p, ok := c.Peers[strconv.Itoa(id)]; ok {
		port := p.Port
		if port == 0 {
			port = DefaultPeerPort
		}
		size := p.PoolSize
		if size <= 0 {
			size = c.DefaultPoolSize
		}
		if strings.HasPrefix(p.Host, "/") {
			return PeerAddr{Network: "unix", Address: filepath.Join(p.Host, ".s.PGSQL."+strconv.Itoa(port)), PoolSize: size}, true
		}
		return PeerAddr{Network: "tcp", Address: net.JoinHostPort(p.Host, strconv.Itoa(port)), Host: p.Host, PoolSize: size}, true
	}
	if c.PeersDNS == "" {
		return PeerAddr{}, false
	}
	host := strings.ReplaceAll(c.PeersDNS, OrdinalPlaceholder, strconv.Itoa(id-1))
	host = strings.ReplaceAll(host, IDPlaceholder, strconv.Itoa(id))
	return PeerAddr{Network: "tcp", Address: net.JoinHostPort(host, strconv.Itoa(c.PeersDNSPort)), Host: host, PoolSize: c.DefaultPoolSize}, true
}

// peerProblems checks peer_id, [peers] and peers_dns.
func (c *Config) peerProblems(ck *checker) {
	if c.PeerID < 0 || c.PeerID > MaxPeerID {
		ck.add(toml.Key{"peer_id"}, "%d is out of range 0..%d", c.PeerID, MaxPeerID)
	}
	if c.PeerID == 0 && (len(c.Peers) > 0 || c.PeersDNS != "") {
		ck.add(toml.Key{"peer_id"}, "must be set (1..%d) when [peers] or peers_dns is: the cancel keys must name this instance", MaxPeerID)
	}
	for id, p := range c.Peers {
		checkPeer(ck, id, p)
	}
	if c.PeersDNS != "" {
		if err := checkPeersDNS(c.PeersDNS); err != nil {
			ck.add(toml.Key{"peers_dns"}, "%q: %v", c.PeersDNS, err)
		}
	}
	ck.intRange(toml.Key{"peers_dns_port"}, c.PeersDNSPort, 1, 65535)
	ck.oneOf(toml.Key{"peer_tls_sslmode"}, c.PeerTLSSSLMode, []string{"disable", "prefer", "require", "verify-ca", "verify-full"})
	if strings.HasPrefix(c.PeerTLSSSLMode, "verify-") && c.PeerTLSCAFile == "" {
		ck.add(toml.Key{"peer_tls_ca_file"}, "must be set when peer_tls_sslmode is %s", c.PeerTLSSSLMode)
	}
}

func checkPeer(ck *checker, id string, p Peer) {
	k := func(field string) toml.Key { return toml.Key{"peers", id, field} }
	if n, err := strconv.Atoi(id); err != nil || n < 1 || n > MaxPeerID || strconv.Itoa(n) != id {
		ck.add(toml.Key{"peers", id}, "the key must be a peer_id, 1..%d", MaxPeerID)
	}
	switch {
	case p.Host == "":
		ck.add(k("host"), "must not be empty")
	case strings.IndexByte(p.Host, 0) >= 0 || strings.ContainsAny(p.Host, " \t\n"):
		ck.add(k("host"), "%q is not a host name, address or socket directory", p.Host)
	}
	if p.Port != 0 {
		ck.intRange(k("port"), p.Port, 1, 65535)
	}
	ck.atLeast(k("pool_size"), p.PoolSize, 0)
}

// checkPeersDNS checks a peers_dns name: a DNS name with {ordinal} or {id}
// in it, so that each peer has a name of its own.
func checkPeersDNS(s string) error {
	if !strings.Contains(s, OrdinalPlaceholder) && !strings.Contains(s, IDPlaceholder) {
		return errors.New("must contain {ordinal} or {id}, e.g. \"mux-{ordinal}.mux-peers.default.svc.cluster.local\" (a StatefulSet's pods under its headless Service)")
	}
	host := strings.ReplaceAll(strings.ReplaceAll(s, OrdinalPlaceholder, "0"), IDPlaceholder, "1")
	if len(host) > 253 || strings.ContainsAny(host, " \t\n/:\x00{}") {
		return errors.New("is not a DNS name")
	}
	return nil
}
