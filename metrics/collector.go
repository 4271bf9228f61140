package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/muxpg/mux/proxy"
)

// PoolSource is what Collector reads at scrape time; *proxy.Proxy is one.
type PoolSource interface {
	Pools() []proxy.PoolInfo
	ParkedClients() int
}

// serverStates are always reported, so that a state with no connections
// reads 0 rather than disappearing.
var serverStates = []string{"active", "idle"}

// Collector is a prometheus.Collector reporting the proxy's pools as they
// are at scrape time: connections by state, pool settings and the pools'
// running totals. The totals are kept by the proxy (the same numbers SHOW
// STATS reads), so they are exported as const metrics rather than mirrored.
type Collector struct {
	src PoolSource

	clients, servers                *prometheus.Desc
	poolSize, minPoolSize, maxWait  *prometheus.Desc
	transactions, queries, waits    *prometheus.Desc
	transactionTime, queryTime      *prometheus.Desc
	waitTime                        *prometheus.Desc
	bytesReceived, bytesSent        *prometheus.Desc
	clientParses, serverParses      *prometheus.Desc
	preparedHits, preparedEvictions *prometheus.Desc
	pinned, parked                  *prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector reading src.
func NewCollector(src PoolSource) *Collector {
	pl := []string{"database", "user"}
	sl := []string{"database", "user", "state"}
	d := func(name, help string, labels []string) *prometheus.Desc {
		return prometheus.NewDesc(name, help, labels, nil)
	}
	return &Collector{
		src:               src,
		clients:           d("mux_clients", "Logged-in client connections, by pool and state (active: holds a server, waiting: for one, idle: neither).", sl),
		servers:           d("mux_servers", "Open server connections, by pool and state (active: lent to a client, idle: in the pool).", sl),
		poolSize:          d("mux_pool_size", "Maximum server connections of the pool.", pl),
		minPoolSize:       d("mux_pool_min_size", "Server connections the pool keeps open.", pl),
		maxWait:           d("mux_pool_max_wait_seconds", "How long the longest-waiting client of the pool has been waiting for a server.", pl),
		transactions:      d("mux_transactions_total", "Transactions finished.", pl),
		queries:           d("mux_queries_total", "Queries finished.", pl),
		waits:             d("mux_pool_waits_total", "Times a client asked the pool for a server.", pl),
		transactionTime:   d("mux_transaction_time_seconds_total", "Time spent in transactions.", pl),
		queryTime:         d("mux_query_time_seconds_total", "Time spent in queries.", pl),
		waitTime:          d("mux_pool_wait_time_seconds_total", "Time clients spent waiting for a server.", pl),
		bytesReceived:     d("mux_received_bytes_total", "Bytes received from clients.", pl),
		bytesSent:         d("mux_sent_bytes_total", "Bytes sent to clients.", pl),
		clientParses:      d("mux_prepared_client_parses_total", "Named Parse messages received from clients (transaction and statement mode).", pl),
		serverParses:      d("mux_prepared_server_parses_total", "Parse messages mux sent to servers for prepared statements.", pl),
		preparedHits:      d("mux_prepared_hits_total", "Prepared statement uses answered from a server's statement cache without a new Parse.", pl),
		preparedEvictions: d("mux_prepared_evictions_total", "Prepared statements closed on servers to stay within max_prepared_statements.", pl),
		parked:            d("mux_clients_parked", "Idle clients parked without a goroutine of their own (among mux_clients{state=\"idle\"}).", nil),
		pinned:            d("mux_pinned_clients", "Clients pinned to their server by session state that cannot move (transaction and statement mode), by reason.", []string{"database", "user", "reason"}),
	}
}

// Describe implements prometheus.Collector.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		c.clients, c.servers, c.poolSize, c.minPoolSize, c.maxWait,
		c.transactions, c.queries, c.waits, c.transactionTime, c.queryTime, c.waitTime,
		c.bytesReceived, c.bytesSent,
		c.clientParses, c.serverParses, c.preparedHits, c.preparedEvictions, c.pinned, c.parked,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(c.parked, prometheus.GaugeValue, float64(c.src.ParkedClients()))
	for _, p := range c.src.Pools() {
		db, user := labelValue(p.Database), labelValue(p.User)
		gauge := func(d *prometheus.Desc, v float64, extra ...string) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, append([]string{db, user}, extra...)...)
		}
		counter := func(d *prometheus.Desc, v float64) {
			ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, db, user)
		}

		for _, cs := range []struct {
			state string
			n     int
		}{{"active", p.ClientsActive}, {"waiting", p.ClientsWaiting}, {"idle", p.ClientsIdle}} {
			gauge(c.clients, float64(cs.n), cs.state)
		}
		servers := make(map[string]int, len(serverStates))
		for _, st := range serverStates {
			servers[st] = 0
		}
		for _, s := range p.Servers {
			servers[s.State]++
		}
		for st, n := range servers {
			gauge(c.servers, float64(n), st)
		}

		gauge(c.poolSize, float64(p.PoolSize))
		gauge(c.minPoolSize, float64(p.MinPoolSize))
		gauge(c.maxWait, p.MaxWait.Seconds())

		s := p.Stats
		counter(c.transactions, float64(s.Transactions))
		counter(c.queries, float64(s.Queries))
		counter(c.waits, float64(s.Waits))
		counter(c.transactionTime, s.TransactionTime.Seconds())
		counter(c.queryTime, s.QueryTime.Seconds())
		counter(c.waitTime, s.WaitTime.Seconds())
		counter(c.bytesReceived, float64(s.BytesReceived))
		counter(c.bytesSent, float64(s.BytesSent))

		for reason, n := range p.Pinned {
			gauge(c.pinned, float64(n), reason)
		}

		ps := p.Prepared
		counter(c.clientParses, float64(ps.ClientParses))
		counter(c.serverParses, float64(ps.ServerParses))
		counter(c.preparedHits, float64(ps.Hits))
		counter(c.preparedEvictions, float64(ps.Evictions))
	}
}
