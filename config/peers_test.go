package config

import (
	"strings"
	"testing"
)

const peersBase = "[databases.app]\n[users.u]\npassword = \"p\"\n"

func TestPeerConfig(t *testing.T) {
	defer func(h func() (string, error)) { hostname = h }(hostname)
	hostname = func() (string, error) { return "mux-2", nil }
	c, err := Parse([]byte(`peer_id = "ordinal"
peers_dns = "mux-{ordinal}.mux-peers.ns.svc.cluster.local"
[peers.1]
host = "10.0.0.1"
[peers.2]
host = "/run/mux"
port = 7000
pool_size = 4
` + peersBase))
	if err != nil {
		t.Fatal(err)
	}
	if c.PeerID != 3 {
		t.Fatalf("peer_id = \"ordinal\" on mux-2: %d, want 3", c.PeerID)
	}
	for _, tc := range []struct {
		id   int
		want PeerAddr
		ok   bool
	}{
		{1, PeerAddr{"tcp", "10.0.0.1:6432", "10.0.0.1", 20}, true},
		{2, PeerAddr{"unix", "/run/mux/.s.PGSQL.7000", "", 4}, true},
		{3, PeerAddr{}, false}, // itself
		{5, PeerAddr{"tcp", "mux-4.mux-peers.ns.svc.cluster.local:6432", "mux-4.mux-peers.ns.svc.cluster.local", 20}, true},
		{0, PeerAddr{}, false},
	} {
		got, ok := c.LookupPeer(tc.id)
		if ok != tc.ok || got != tc.want {
			t.Errorf("LookupPeer(%d) = %+v, %v; want %+v, %v", tc.id, got, ok, tc.want, tc.ok)
		}
	}
}

func TestOrdinalID(t *testing.T) {
	for name, want := range map[string]int{"mux-0": 1, "mux-12.mux-peers.default.svc": 13, "my-mux-3": 4} {
		if got, err := OrdinalID(name); err != nil || got != want {
			t.Errorf("OrdinalID(%q) = %d, %v; want %d", name, got, err, want)
		}
	}
	for _, name := range []string{"mux", "mux-", "mux-a", "mux-+1", "mux-1x", "mux-16383"} {
		if _, err := OrdinalID(name); err == nil {
			t.Errorf("OrdinalID(%q) accepted", name)
		}
	}
}

func TestPeerConfigErrors(t *testing.T) {
	defer func(h func() (string, error)) { hostname = h }(hostname)
	hostname = func() (string, error) { return "laptop", nil }
	for _, tc := range []struct{ toml, want string }{
		{"peer_id = 16384", "peer_id: 16384 is out of range 0..16383"},
		{"peer_id = -1", "peer_id: -1 is out of range"},
		{"peer_id = \"ordinal\"", `peer_id: "ordinal": host name "laptop" does not end in -N`},
		{"peer_id = \"first\"", `peer_id: must be an integer 0..16383 or "ordinal"`},
		{"[peers.1]\nhost = \"a\"", "peer_id: must be set (1..16383) when [peers] or peers_dns is"},
		{"peer_id = 1\n[peers.x]\nhost = \"a\"", "peers.x: the key must be a peer_id, 1..16383"},
		{"peer_id = 1\n[peers.02]\nhost = \"a\"", "peers.02: the key must be a peer_id"},
		{"peer_id = 1\n[peers.2]\nport = 5", "peers.2.host: must not be empty"},
		{"peer_id = 1\n[peers.2]\nhost = \"a\"\nport = 70000", "peers.2.port: 70000 is out of range 1..65535"},
		{"peer_id = 1\n[peers.2]\nhost = \"a\"\npool_size = -1", "peers.2.pool_size: -1 is less than 0"},
		{"peer_id = 1\n[peers.2]\nhost = \"a\"\nsize = 1", `unknown key "peers.2.size"`},
		{"peer_id = 1\npeers_dns = \"mux.svc\"", "peers_dns: \"mux.svc\": must contain {ordinal} or {id}"},
		{"peer_id = 1\npeers_dns = \"mux-{id}.svc:6432\"", "peers_dns: \"mux-{id}.svc:6432\": is not a DNS name"},
		{"peer_id = 1\npeers_dns_port = 0", "peers_dns_port: 0 is out of range 1..65535"},
		{"peer_tls_sslmode = \"on\"", "peer_tls_sslmode: \"on\" is not one of"},
		{"peer_tls_sslmode = \"verify-full\"", "peer_tls_ca_file: must be set when peer_tls_sslmode is verify-full"},
	} {
		_, err := Parse([]byte(tc.toml + "\n" + peersBase))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s:\n got %v\nwant %q", tc.toml, err, tc.want)
		}
	}
}
