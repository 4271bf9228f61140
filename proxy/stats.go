package proxy

import (
	"net"
	"sort"
	"sync/atomic"
	"time"

	"github.com/muxpg/mux/admin"
	"github.com/muxpg/mux/pool"
)

// Observer receives events for metrics. It must be safe for concurrent
// use.
type Observer interface {
	// Pool returns the observer of one pool's events. It is called once,
	// when the pool is made, so that the transaction path does not look
	// up labels.
	Pool(database, user string) PoolObserver
	// LoginFailed counts a failed client login, by SQLSTATE.
	LoginFailed(sqlstate string)
}

// PoolObserver receives one pool's events. Its methods are called on hot
// paths: they must be cheap and safe for concurrent use.
type PoolObserver interface {
	// PoolWait is how long a client waited for a server.
	PoolWait(d time.Duration)
	// Transaction and Query report finished transactions and queries.
	Transaction(d time.Duration)
	Query(d time.Duration)
	// ErrorSent counts an ErrorResponse a client received, by SQLSTATE.
	ErrorSent(sqlstate string)
	// Close forgets the pool, which was dropped: its series go, and later
	// events are ignored.
	Close()
}

type nopObserver struct{}

func (nopObserver) Pool(string, string) PoolObserver { return nopObserver{} }
func (nopObserver) LoginFailed(string)               {}
func (nopObserver) PoolWait(time.Duration)           {}
func (nopObserver) Transaction(time.Duration)        {}
func (nopObserver) Query(time.Duration)              {}
func (nopObserver) ErrorSent(string)                 {}
func (nopObserver) Close()                           {}

// SetObserver installs o (before Serve: pools made earlier keep the
// observer they were made with).
func (p *Proxy) SetObserver(o Observer) { p.obs = o }

// poolStats are one pool's running totals, in PgBouncer's terms.
type poolStats struct {
	xacts, queries     atomic.Int64
	bytesIn, bytesOut  atomic.Int64 // from clients, to clients
	xactUs, queryUs    atomic.Int64 // time spent in transactions / queries
	waitUs, waits      atomic.Int64 // time clients waited for a server, and how often
	errors, loginFails atomic.Int64

	obs PoolObserver // set when the pool is made, read-only afterwards

	// Guarded by Proxy.poolMu: the clients that took the pool from poolFor
	// and have not ended, and since when it has had none.
	refs   int
	unused time.Time
}

// PoolStats is a snapshot of a pool's totals (the console's own type:
// SHOW STATS and the metrics read the same numbers).
type PoolStats = admin.Stats

func (s *poolStats) snapshot() PoolStats {
	return PoolStats{
		Transactions:    s.xacts.Load(),
		Queries:         s.queries.Load(),
		BytesReceived:   s.bytesIn.Load(),
		BytesSent:       s.bytesOut.Load(),
		TransactionTime: time.Duration(s.xactUs.Load()) * time.Microsecond,
		QueryTime:       time.Duration(s.queryUs.Load()) * time.Microsecond,
		WaitTime:        time.Duration(s.waitUs.Load()) * time.Microsecond,
		Waits:           s.waits.Load(),
		Errors:          s.errors.Load(),
	}
}

// PoolInfo describes one pool for SHOW POOLS/STATS/DATABASES and metrics.
type PoolInfo struct {
	Database, User string // as clients ask for them
	PoolMode       string
	Target         pool.Target // where its servers go (Password not to be shown)
	PoolSize       int
	MinPoolSize    int
	ClientsActive  int // clients holding a server
	ClientsWaiting int // clients waiting for one
	ClientsIdle    int // logged-in clients holding none
	Servers        []pool.ServerInfo
	MaxWait        time.Duration
	Stats          PoolStats
	Prepared       PreparedStats
	Pinned         map[string]int // clients pinned to their server, by reason
}

// Pools returns a snapshot of every pool, sorted by database and user.
func (p *Proxy) Pools() []PoolInfo {
	clients := p.Clients()
	p.poolMu.Lock()
	out := make([]PoolInfo, 0, len(p.pools))
	for key, pl := range p.pools {
		cfg := pl.Config()
		info := PoolInfo{
			Database: key.database, User: key.user,
			Target: cfg.Target, PoolSize: cfg.MaxSize, MinPoolSize: cfg.MinSize,
			Servers: pl.Servers(), MaxWait: pl.MaxWait(),
		}
		if st := p.stats[key]; st != nil {
			info.Stats = st.snapshot()
		}
		if r := p.stmts[key]; r != nil {
			info.Prepared = r.Stats()
		}
		info.Target.Password = ""
		out = append(out, info)
	}
	p.poolMu.Unlock()
	idx := map[poolKey]int{}
	for i := range out {
		idx[poolKey{out[i].Database, out[i].User}] = i
	}
	for _, c := range clients {
		i, ok := idx[poolKey{c.Database, c.User}]
		if !ok {
			continue
		}
		out[i].PoolMode = c.PoolMode
		if c.PinReason != "" {
			if out[i].Pinned == nil {
				out[i].Pinned = map[string]int{}
			}
			out[i].Pinned[c.PinReason]++
		}
		switch c.State {
		case "active":
			out[i].ClientsActive++
		case "waiting":
			out[i].ClientsWaiting++
		default:
			out[i].ClientsIdle++
		}
	}
	for i := range out {
		if out[i].PoolMode == "" {
			db, _ := p.config().LookupDatabase(out[i].Database)
			out[i].PoolMode = p.config().PoolModeFor(db, out[i].User)
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Database != out[j].Database {
			return out[i].Database < out[j].Database
		}
		return out[i].User < out[j].User
	})
	return out
}

// ClientInfo describes one logged-in client for SHOW CLIENTS.
type ClientInfo struct {
	ID              uint64
	User, Database  string
	PoolMode        string
	State           string // "active" (holds a server), "waiting" (for one), "idle"
	Remote, Local   net.Addr
	ConnectTime     time.Time
	RequestTime     time.Time // last message from the client
	BackendKeyPID   uint32    // the BackendKeyData process ID mux issued
	ServerID        uint64    // 0 when holding none
	ServerPID       uint32
	ApplicationName string
	TLS             bool
	PreparedCount   int
	PinReason       string // why the client keeps its server between transactions ("" if it does not)
}

// Clients returns a snapshot of every logged-in client, by ID.
func (p *Proxy) Clients() []ClientInfo {
	p.keysMu.Lock()
	list := make([]*clientConn, 0, len(p.keys))
	for _, c := range p.keys {
		list = append(list, c)
	}
	p.keysMu.Unlock()
	out := make([]ClientInfo, 0, len(list))
	for _, c := range list {
		c.mu.Lock()
		ci := ClientInfo{
			ID: c.id, User: c.user, Database: c.database, PoolMode: c.core.Mode.String(),
			Remote: c.conn.RemoteAddr(), Local: c.conn.LocalAddr(),
			ConnectTime: c.connected, RequestTime: c.core.LastRequest(),
			BackendKeyPID: c.key.pid, ApplicationName: c.want.v[paramApplicationName],
			TLS: c.tls, PreparedCount: c.trk.Len(), PinReason: c.pin.reason,
		}
		switch {
		case c.server != nil:
			ci.State = "active"
			ci.ServerID, ci.ServerPID = c.server.ID, c.server.KeyPID
		case c.waiting:
			ci.State = "waiting"
		default:
			ci.State = "idle"
		}
		c.mu.Unlock()
		out = append(out, ci)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
