// Package metrics serves mux's HTTP endpoint: Prometheus metrics, liveness
// and readiness.
package metrics

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/muxpg/mux/proxy"
)

// Histogram buckets, in seconds.
var (
	// waitBuckets reach past the default query_wait_timeout (2m): a
	// healthy pool hands out servers in microseconds, a saturated one makes
	// clients wait up to the timeout.
	waitBuckets = []float64{.0001, .0005, .001, .005, .01, .05, .1, .5, 1, 5, 10, 30, 60, 120}
	// durationBuckets cover OLTP statements (sub-millisecond) to reports.
	durationBuckets = []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60}
)

// Observer records the events the proxy reports (proxy.Observer) in
// Prometheus histograms and counters. It is safe for concurrent use.
//
// Label cardinality is bounded by the pools: database and user are those of
// a pool, i.e. an entry of the configuration (or a name the "*" entry
// matched for an authenticated user); SQLSTATEs are checked to be five
// characters of [0-9A-Z] and anything else is reported as "other".
type Observer struct {
	poolWait      *prometheus.HistogramVec
	transaction   *prometheus.HistogramVec
	query         *prometheus.HistogramVec
	errors        *prometheus.CounterVec
	loginFailures *prometheus.CounterVec
}

var _ proxy.Observer = (*Observer)(nil)

// NewObserver creates an Observer and registers its metrics with reg.
func NewObserver(reg prometheus.Registerer) *Observer {
	pl := []string{"database", "user"}
	o := &Observer{
		poolWait: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mux_pool_wait_seconds",
			Help:    "Time clients waited for a server connection from the pool.",
			Buckets: waitBuckets,
		}, pl),
		transaction: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mux_transaction_duration_seconds",
			Help:    "Duration of finished transactions (BEGIN to COMMIT/ROLLBACK, or one autocommit statement).",
			Buckets: durationBuckets,
		}, pl),
		query: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "mux_query_duration_seconds",
			Help:    "Duration of finished queries, from the client's request to the server's ReadyForQuery.",
			Buckets: durationBuckets,
		}, pl),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mux_errors_total",
			Help: "ErrorResponses sent to clients, by SQLSTATE class (its first two characters).",
		}, []string{"database", "user", "class"}),
		loginFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "mux_login_failures_total",
			Help: "Failed client logins, by SQLSTATE.",
		}, []string{"sqlstate"}),
	}
	reg.MustRegister(o.poolWait, o.transaction, o.query, o.errors, o.loginFailures)
	return o
}

// Pool implements proxy.Observer. The pool's series are looked up at its
// first event, once: a pool that never serves a query (a database that
// does not exist, under the "*" entry) adds no series.
func (o *Observer) Pool(database, user string) proxy.PoolObserver {
	return &poolObserver{o: o, database: labelValue(database), user: labelValue(user)}
}

// poolObserver records one pool's events (proxy.PoolObserver).
type poolObserver struct {
	o              *Observer
	database, user string

	s      atomic.Pointer[poolSeries] // nil before the first event and after Close
	mu     sync.Mutex                 // makes and deletes the series
	closed bool                       // guarded by mu
}

// poolSeries are one pool's series, looked up once.
type poolSeries struct {
	poolWait, transaction, query prometheus.Observer
	errors                       *prometheus.CounterVec // curried: by class
}

// series returns the pool's series, making them at its first event; nil
// once the pool was closed.
func (po *poolObserver) series() *poolSeries {
	if s := po.s.Load(); s != nil {
		return s
	}
	po.mu.Lock()
	defer po.mu.Unlock()
	if po.closed {
		return nil
	}
	if s := po.s.Load(); s != nil {
		return s
	}
	o, db, u := po.o, po.database, po.user
	s := &poolSeries{
		poolWait:    o.poolWait.WithLabelValues(db, u),
		transaction: o.transaction.WithLabelValues(db, u),
		query:       o.query.WithLabelValues(db, u),
		errors:      o.errors.MustCurryWith(prometheus.Labels{"database": db, "user": u}),
	}
	po.s.Store(s)
	return s
}

func (po *poolObserver) PoolWait(d time.Duration) {
	if s := po.series(); s != nil {
		s.poolWait.Observe(d.Seconds())
	}
}

func (po *poolObserver) Transaction(d time.Duration) {
	if s := po.series(); s != nil {
		s.transaction.Observe(d.Seconds())
	}
}

func (po *poolObserver) Query(d time.Duration) {
	if s := po.series(); s != nil {
		s.query.Observe(d.Seconds())
	}
}

func (po *poolObserver) ErrorSent(sqlstate string) {
	class := "other"
	if validSQLState(sqlstate) {
		class = sqlstate[:2]
	}
	s := po.series()
	if s == nil {
		return
	}
	// Under mu: incrementing through the curried vector would make the
	// series again after Close deleted it.
	po.mu.Lock()
	defer po.mu.Unlock()
	if !po.closed {
		s.errors.WithLabelValues(class).Inc()
	}
}

// Close deletes the pool's series (the pool was dropped). A histogram
// event racing with it may still land in a deleted series, which is never
// scraped.
func (po *poolObserver) Close() {
	po.mu.Lock()
	defer po.mu.Unlock()
	po.closed = true
	if po.s.Swap(nil) == nil {
		return
	}
	o, db, u := po.o, po.database, po.user
	o.poolWait.DeleteLabelValues(db, u)
	o.transaction.DeleteLabelValues(db, u)
	o.query.DeleteLabelValues(db, u)
	o.errors.DeletePartialMatch(prometheus.Labels{"database": db, "user": u})
}

// labelValue makes a database or user name a valid label value: Prometheus
// refuses (and its Must* functions panic on) bytes that are not UTF-8,
// which a client may send as names. Each invalid byte is written as \xNN,
// so two such names stay apart.
func labelValue(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, n := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && n == 1 {
			fmt.Fprintf(&b, "\\x%02x", s[i])
		} else {
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// LoginFailed implements proxy.Observer.
func (o *Observer) LoginFailed(sqlstate string) {
	if !validSQLState(sqlstate) {
		sqlstate = "other"
	}
	o.loginFailures.WithLabelValues(sqlstate).Inc()
}

// validSQLState reports whether s looks like a SQLSTATE: five digits or
// upper-case letters. Codes come from Postgres too, so they are checked
// before they become label values.
func validSQLState(s string) bool {
	if len(s) != 5 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'A' || c > 'Z') {
			return false
		}
	}
	return true
}
