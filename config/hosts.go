package config

// Several hosts per database entry: roles, routing by libpq's
// target_session_attrs, load balancing, and the health checks that find
// each host's role.

import (
	"fmt"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
)

// Host roles (hosts[].role).
const (
	RolePrimary = "primary" // takes writes
	RoleReplica = "replica" // a hot standby: reads only
	RoleAuto    = "auto"    // asked of the server: pg_is_in_recovery()
)

// Values of target_session_attrs, libpq's vocabulary.
const (
	TSAAny           = "any"
	TSAReadWrite     = "read-write"
	TSAReadOnly      = "read-only"
	TSAPrimary       = "primary"
	TSAStandby       = "standby"
	TSAPreferStandby = "prefer-standby"
)

// Values of load_balance_hosts.
const (
	BalanceRoundRobin = "round-robin" // each new server connection to the next eligible host
	BalanceLeastBusy  = "least-busy"  // to the eligible host with the fewest mux connections
	BalanceDisable    = "disable"     // to the first eligible host in list order
)

// Defaults of the host settings.
const (
	// DefaultHostCheckInterval is how often each host of an entry with
	// several hosts (or a target_session_attrs) is checked.
	DefaultHostCheckInterval = time.Second
	// DefaultHostCheckTimeout bounds one check: connect, log in, query.
	DefaultHostCheckTimeout = 2 * time.Second
	// DefaultHostRetryMax caps the back-off between checks of a host that
	// failed: it starts at host_check_interval and doubles.
	DefaultHostRetryMax = 10 * time.Second
	// DefaultMaxReplicaLag is how far a replica's replay may lag before
	// it gets no reads (max_replica_lag; 0 turns the limit off).
	DefaultMaxReplicaLag = 10 * time.Second
)

var (
	hostRoles  = []string{RolePrimary, RoleReplica, RoleAuto}
	tsaValues  = []string{TSAAny, TSAReadWrite, TSAReadOnly, TSAPrimary, TSAStandby, TSAPreferStandby}
	balanceIDs = []string{BalanceRoundRobin, BalanceLeastBusy, BalanceDisable}
	hostKeys   = tomlFieldNames(reflect.TypeFor[HostSpec]())
)

// HostSpec is one element of a database entry's hosts list.
type HostSpec struct {
	// Host is a host name, an IP address, or a Unix socket directory.
	Host string `toml:"host"`
	// Port is the Postgres port; 0 (absent) = 5432.
	Port int `toml:"port"`
	// Role is primary, replica or auto; "" (absent) = auto.
	Role string `toml:"role"`
}

// HostsConfig holds a database entry's keys for several hosts and routing.
// It is embedded in Database, so its keys sit in the entry itself.
type HostsConfig struct {
	// Hosts lists the servers of this database, instead of host/port.
	Hosts []HostSpec `toml:"hosts"`
	// TargetSessionAttrs picks the hosts new server connections go to, in
	// libpq's vocabulary. "" = "any" with one host, "read-write" with
	// several (see EffectiveTSA).
	TargetSessionAttrs string `toml:"target_session_attrs"`
	// LoadBalanceHosts spreads new server connections among the eligible
	// hosts: round-robin, least-busy or disable. "" = round-robin.
	LoadBalanceHosts string `toml:"load_balance_hosts"`
	// FallbackToPrimary lets an entry routed to replicas (read-only,
	// standby) use the primary while no replica is healthy. nil (absent)
	// = true; see Fallback.
	FallbackToPrimary *bool `toml:"fallback_to_primary"`
	// ReadWriteSplit sends transactions that only read to a replica and
	// everything else to the primary (transaction mode, simple-protocol
	// Queries; see the README). Default false.
	ReadWriteSplit bool `toml:"read_write_split"`
	// MaxReplicaLag overrides the global max_replica_lag for this entry;
	// nil (absent) = the global one.
	MaxReplicaLag *Duration `toml:"max_replica_lag"`
}

// ReplicaLagLimit is the entry's max_replica_lag: its own, else global.
func (h HostsConfig) ReplicaLagLimit(global Duration) Duration {
	if h.MaxReplicaLag != nil {
		return *h.MaxReplicaLag
	}
	return global
}

// Fallback is fallback_to_primary with its default, true.
func (h HostsConfig) Fallback() bool {
	return h.FallbackToPrimary == nil || *h.FallbackToPrimary
}

// HostChecks holds the global settings of host health checks. It is
// embedded in Config, so its keys are top-level keys.
type HostChecks struct {
	// HostCheckInterval is how often each host of a routed entry is
	// checked (connect, log in, pg_is_in_recovery()). Default 1s.
	HostCheckInterval Duration `toml:"host_check_interval"`
	// HostCheckTimeout bounds one check; a host that does not answer in
	// time is down. Default 2s.
	HostCheckTimeout Duration `toml:"host_check_timeout"`
	// HostRetryMax caps the back-off between checks of a down host.
	// Default 10s.
	HostRetryMax Duration `toml:"host_retry_max"`
	// MaxReplicaLag: a replica whose replay lags more than this gets no
	// connections (reads) until it catches up; 0 = no limit. Default 10s.
	MaxReplicaLag Duration `toml:"max_replica_lag"`
}

// defaultHostChecks are HostChecks' defaults, for Default.
func defaultHostChecks() HostChecks {
	return HostChecks{
		HostCheckInterval: Duration(DefaultHostCheckInterval),
		HostCheckTimeout:  Duration(DefaultHostCheckTimeout),
		HostRetryMax:      Duration(DefaultHostRetryMax),
		MaxReplicaLag:     Duration(DefaultMaxReplicaLag),
	}
}

// Routed reports whether the entry uses host routing: it lists hosts or
// asks for a target_session_attrs. A plain host/port entry does not, and
// connects as it always did.
func (db Database) Routed() bool {
	return len(db.Hosts) > 0 || db.TargetSessionAttrs != ""
}

// HostList returns the entry's hosts: its hosts list with defaults
// applied, or its host/port as one host of role auto.
func (db Database) HostList() []HostSpec {
	if len(db.Hosts) == 0 {
		return []HostSpec{{Host: db.Host, Port: db.Port, Role: RoleAuto}}
	}
	out := slices.Clone(db.Hosts)
	for i := range out {
		if out[i].Port == 0 {
			out[i].Port = DefaultPort
		}
		if out[i].Role == "" {
			out[i].Role = RoleAuto
		}
	}
	return out
}

// EffectiveTSA is the entry's target_session_attrs with its default:
// "any" for one host, "read-write" for several (writes must never reach
// a standby because an entry happened to list one).
func (db Database) EffectiveTSA() string {
	switch {
	case db.TargetSessionAttrs != "":
		return db.TargetSessionAttrs
	case len(db.Hosts) > 1:
		return TSAReadWrite
	}
	return TSAAny
}

// EffectiveBalance is load_balance_hosts with its default.
func (db Database) EffectiveBalance() string {
	if db.LoadBalanceHosts == "" {
		return BalanceRoundRobin
	}
	return db.LoadBalanceHosts
}

// checkHosts validates an entry's host keys.
func checkHosts(ck *checker, name string, db Database, hostDefined bool) {
	k := func(field string) toml.Key { return toml.Key{"databases", name, field} }
	if db.TargetSessionAttrs != "" {
		ck.oneOf(k("target_session_attrs"), db.TargetSessionAttrs, tsaValues)
	}
	if db.LoadBalanceHosts != "" {
		ck.oneOf(k("load_balance_hosts"), db.LoadBalanceHosts, balanceIDs)
	}
	if len(db.Hosts) == 0 {
		return
	}
	if hostDefined {
		ck.add(k("hosts"), "set either host/port or hosts, not both")
	}
	seen := map[string]int{}
	primaries := 0
	for i, h := range db.HostList() {
		hk := toml.Key{"databases", name, "hosts", strconv.Itoa(i + 1)}
		checkHost(ck, hk, db.Hosts[i])
		addr := h.Host + ":" + strconv.Itoa(h.Port)
		if j, dup := seen[addr]; dup {
			ck.add(hk, "host %s is already listed as host %d", net.JoinHostPort(h.Host, strconv.Itoa(h.Port)), j)
		}
		seen[addr] = i + 1
		if h.Role == RolePrimary {
			primaries++
		}
	}
	if primaries > 1 {
		ck.add(k("hosts"), "%d hosts have role \"primary\"; at most one may (mux never writes to two primaries: use \"auto\" to let the servers say)", primaries)
	}
	checkRouting(ck, k("target_session_attrs"), db)
}

// checkHost validates one hosts element; key names it ("databases.app.hosts.2").
func checkHost(ck *checker, key toml.Key, h HostSpec) {
	switch {
	case h.Host == "":
		ck.add(append(key, "host"), "must not be empty")
	case strings.IndexByte(h.Host, 0) >= 0:
		ck.add(append(key, "host"), "must not contain NUL bytes")
	}
	if h.Port != 0 {
		ck.intRange(append(key, "port"), h.Port, 1, 65535)
	}
	if h.Role != "" {
		ck.oneOf(append(key, "role"), h.Role, hostRoles)
	}
}

// checkRouting refuses a target_session_attrs no listed host can serve.
func checkRouting(ck *checker, key toml.Key, db Database) {
	var primary, replica bool // some host is, or may be, one
	for _, h := range db.HostList() {
		primary = primary || h.Role != RoleReplica
		replica = replica || h.Role != RolePrimary
	}
	switch tsa := db.EffectiveTSA(); tsa {
	case TSAReadWrite, TSAPrimary:
		if !primary {
			ck.add(key, "%q needs a host of role primary or auto, but every host is a replica", tsa)
		}
	case TSAStandby, TSAReadOnly:
		if !replica {
			ck.add(key, "%q needs a host of role replica or auto, but every host is a primary", tsa)
		}
	}
}

// unknownHostKey reports whether key, under databases, is a hosts element's
// key that the schema does not know. Keys of hosts elements come as
// databases.NAME.hosts.FIELD.
func unknownHostKey(key toml.Key) (known []string, unknown bool) {
	if len(key) != 4 || key[2] != "hosts" {
		return nil, true
	}
	return hostKeys, !slices.Contains(hostKeys, key[3])
}

// hostChecksProblems validates the global host check settings.
func (c *Config) hostChecksProblems(ck *checker) {
	if c.HostCheckInterval.D() <= 0 {
		ck.add(toml.Key{"host_check_interval"}, "must be positive")
	}
	if c.HostCheckTimeout.D() <= 0 {
		ck.add(toml.Key{"host_check_timeout"}, "must be positive")
	}
	if c.HostRetryMax.D() < c.HostCheckInterval.D() {
		ck.add(toml.Key{"host_retry_max"}, "%s is less than host_check_interval %s", c.HostRetryMax, c.HostCheckInterval)
	}
	if c.MaxReplicaLag.D() < 0 {
		ck.add(toml.Key{"max_replica_lag"}, "must not be negative (0 turns the limit off)")
	}
}

// checkSplit refuses a read_write_split the entry cannot do, and a
// negative max_replica_lag.
func (c *Config) checkSplit(ck *checker, name string, db Database) {
	k := func(field string) toml.Key { return toml.Key{"databases", name, field} }
	if db.MaxReplicaLag != nil && db.MaxReplicaLag.D() < 0 {
		ck.add(k("max_replica_lag"), "must not be negative (0 turns the limit off)")
	}
	if !db.ReadWriteSplit {
		return
	}
	var primary, replica bool // some host is, or may be, one
	for _, h := range db.HostList() {
		primary = primary || h.Role != RoleReplica
		replica = replica || h.Role != RolePrimary
	}
	switch mode := c.PoolModeFor(db, ""); {
	case len(db.Hosts) < 2 || !replica || !primary:
		ck.add(k("read_write_split"), "needs a hosts list with a host that may be the primary and another that may be a replica (role primary, replica or auto)")
	case mode != PoolModeTransaction:
		ck.add(k("read_write_split"), "needs pool_mode %q (each transaction picks its host), but this entry's pool mode is %q", PoolModeTransaction, mode)
	}
	switch tsa := db.EffectiveTSA(); tsa {
	case TSAReadWrite, TSAPrimary:
	default:
		ck.add(k("read_write_split"), "sends writes through the entry's own routing, so target_session_attrs must be %q or %q, not %q", TSAReadWrite, TSAPrimary, tsa)
	}
}

// String describes a host for messages: host:port (role).
func (h HostSpec) String() string {
	return fmt.Sprintf("%s (%s)", net.JoinHostPort(h.Host, strconv.Itoa(h.Port)), h.Role)
}
