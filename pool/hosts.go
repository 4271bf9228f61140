package pool

// Several hosts per database entry. A HostSet is shared by every pool of
// one entry: it checks each host (health.go), elects the primary, and
// picks the host each new server connection goes to (route.go). Routing
// happens when a server connection is made, never per query.

import (
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"
)

// HostState is a host's health, as the last check saw it.
type HostState int32

const (
	// HostUnknown: not checked yet.
	HostUnknown HostState = iota
	// HostUp: answered its last check.
	HostUp
	// HostDown: its last check (or a connection attempt) failed; it is
	// checked again after a back-off and gets no new connections meanwhile.
	HostDown
)

func (s HostState) String() string {
	switch s {
	case HostUp:
		return "up"
	case HostDown:
		return "down"
	}
	return "unknown"
}

// Role is what a host is in replication.
type Role int32

const (
	// RoleUnknown: not known yet (never answered).
	RoleUnknown Role = iota
	// RolePrimary: takes writes (pg_is_in_recovery() false).
	RolePrimary
	// RoleStandby: a hot standby (pg_is_in_recovery() true).
	RoleStandby
)

func (r Role) String() string {
	switch r {
	case RolePrimary:
		return "primary"
	case RoleStandby:
		return "replica"
	}
	return "unknown"
}

// Routing says which hosts an entry's new server connections go to.
type Routing int

// The routings, from libpq's target_session_attrs.
const (
	RouteAny           Routing = iota // any healthy host
	RoutePrimary                      // read-write, primary: the elected primary only
	RouteStandby                      // read-only, standby: replicas (fallback: the primary)
	RoutePreferStandby                // replicas, else the primary
	// RouteReads is a read sibling's (reads.go): replicas that keep up,
	// else the primary, whatever fallback_to_primary says.
	RouteReads
)

// Balance says how new connections are spread over eligible hosts.
type Balance int

// The balances, from load_balance_hosts.
const (
	BalanceRoundRobin Balance = iota
	BalanceLeastBusy
	BalanceFirst // disable: the first eligible host in list order
)

// HostSpec is one configured host.
type HostSpec struct {
	Host string
	Port int
	// Fixed is RolePrimary or RoleStandby for a host whose role is
	// configured, RoleUnknown for "auto" (asked of the server).
	Fixed Role
}

// HostSetConfig configures a HostSet.
type HostSetConfig struct {
	Name     string // the hosts and routing, for logs and errors
	Hosts    []HostSpec
	Routing  Routing
	Balance  Balance
	Fallback bool          // RouteStandby may use the primary when no replica is up
	Interval time.Duration // between checks of a host that is up
	Timeout  time.Duration // bound on one check
	RetryMax time.Duration // cap on the back-off of a down host
	// MaxLag: a replica lagging more gets no connections; 0: no limit.
	MaxLag time.Duration
}

// Host is one server of a HostSet.
type Host struct {
	Spec HostSpec
	set  *HostSet

	// epoch grows when the host goes down or its role changes: servers
	// connected at an older epoch are closed when next idle.
	epoch atomic.Uint64
	conns atomic.Int64 // open server connections of mux's pools to it

	mu        sync.Mutex // guards the fields below; taken after HostSet.mu
	state     HostState
	role      Role
	timeline  uint32
	lastCheck time.Time
	reason    string  // why it gets no connections ("" when it may)
	lagging   string  // why a replica gets no connections: it lags ("" when it keeps up; lag.go)
	lag       hostLag // as of its last check
	backoff   time.Duration
	nextCheck time.Time
	checking  bool
}

// HostSet is the hosts of one database entry. Safe for concurrent use.
type HostSet struct {
	cfg  HostSetConfig
	log  *zap.Logger
	stop chan struct{}
	once sync.Once

	// gen grows whenever which hosts are eligible may have changed: a
	// server whose routeGen is older is checked against the routing when
	// released, and a pool's template is fetched again.
	gen atomic.Uint64

	mu       sync.Mutex // guards the fields below; never held across I/O
	hosts    []*Host
	primary  *Host   // the elected primary, nil if none is up
	creds    *Target // login for checks: the last target a pool connected with
	rr       int     // round-robin cursor
	claimsAt string  // the claimants of the last split-brain report
	// The primary's WAL position at its last check and the one before
	// (lag.go), in bytes; 0: not known.
	plsn, plsnOld uint64
}

// NewHostSet creates the hosts of an entry and starts checking them.
func NewHostSet(cfg HostSetConfig, log *zap.Logger) *HostSet {
	hs := &HostSet{cfg: cfg, log: log, stop: make(chan struct{})}
	for _, sp := range cfg.Hosts {
		hs.hosts = append(hs.hosts, &Host{Spec: sp, set: hs})
	}
	go hs.run()
	return hs
}

// Close stops the checks.
func (hs *HostSet) Close() { hs.once.Do(func() { close(hs.stop) }) }

// Config returns the set's configuration.
func (hs *HostSet) Config() HostSetConfig { return hs.cfg }

// noteTarget keeps t's login for the checks.
func (hs *HostSet) noteTarget(t Target) {
	hs.mu.Lock()
	hs.creds = &t
	hs.mu.Unlock()
}

// HostInfo describes a host for SHOW HOSTS, metrics and readiness.
type HostInfo struct {
	Host      string
	Port      int
	Role      Role
	Fixed     bool // the role is configured, not asked
	State     HostState
	Primary   bool // the elected primary
	Timeline  uint32
	Reason    string
	LastCheck time.Time
	Conns     int64
	// A replica's lag (lag.go): LagKnown when its check could read it.
	LagKnown bool
	Lag      time.Duration
	LagBytes uint64
	Lagging  string // why it gets no connections for lagging ("" if it keeps up)
}

// Hosts describes every host, in configuration order.
func (hs *HostSet) Hosts() []HostInfo {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	out := make([]HostInfo, 0, len(hs.hosts))
	for _, h := range hs.hosts {
		h.mu.Lock()
		out = append(out, HostInfo{Host: h.Spec.Host, Port: h.Spec.Port,
			Role: h.role, Fixed: h.Spec.Fixed != RoleUnknown, State: h.state, Primary: h == hs.primary,
			Timeline: h.timeline, Reason: h.reason, LastCheck: h.lastCheck, Conns: h.conns.Load(),
			LagKnown: h.lag.known && h.role == RoleStandby, Lag: h.lag.lag, LagBytes: h.lag.bytes, Lagging: h.lagging})
		h.mu.Unlock()
	}
	return out
}

// Health sums up the set for readiness.
type Health int

const (
	// HealthOK: every host is up and the routing has its preferred hosts.
	HealthOK Health = iota
	// HealthDegraded: some host answers, but another is down, or the
	// routing runs on its fallback or has no host at all for now (a dead
	// primary before a promotion: writes wait, reads go on).
	HealthDegraded
	// HealthDown: no host answers.
	HealthDown
)

// Health says how well the entry can serve new connections now.
func (hs *HostSet) Health() Health {
	hs.mu.Lock()
	defer hs.mu.Unlock()
	up := 0
	for _, h := range hs.hosts {
		h.mu.Lock()
		if h.state == HostUp {
			up++
		}
		h.mu.Unlock()
	}
	preferred, _ := hs.eligibleLocked()
	switch {
	case up == 0:
		return HealthDown
	case up < len(hs.hosts) || len(preferred) == 0:
		return HealthDegraded
	}
	return HealthOK
}
