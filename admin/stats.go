package admin

import (
	"sort"
	"sync"
	"time"
)

// statsSample is every database's totals at one time.
type statsSample struct {
	at   time.Time
	byDB map[string]Stats
}

// sampler keeps the two latest samples, at least a stats_period apart.
type sampler struct {
	mu         sync.Mutex
	prev, last *statsSample
}

// dbStats sums the pools' totals per database, and lists the databases
// sorted.
func dbStats(pools []Pool) (map[string]Stats, []string) {
	by := map[string]Stats{}
	var names []string
	for _, pi := range pools {
		st, ok := by[pi.Database]
		if !ok {
			names = append(names, pi.Database)
		}
		st.Transactions += pi.Stats.Transactions
		st.Queries += pi.Stats.Queries
		st.BytesReceived += pi.Stats.BytesReceived
		st.BytesSent += pi.Stats.BytesSent
		st.TransactionTime += pi.Stats.TransactionTime
		st.QueryTime += pi.Stats.QueryTime
		st.WaitTime += pi.Stats.WaitTime
		st.Waits += pi.Stats.Waits
		by[pi.Database] = st
	}
	sort.Strings(names)
	return by, names
}

// averages returns per-database averages over the last stats period, like
// PgBouncer: counts and bytes per second, transaction and query times per
// transaction and query, wait time per second (all µs). Samples are taken
// when asked, at least period (stats_period) apart; before two exist, all
// are 0.
func (sm *sampler) averages(now time.Time, cur map[string]Stats, period time.Duration) map[string][7]int64 {
	sm.mu.Lock()
	if sm.last == nil || now.Sub(sm.last.at) >= period {
		sm.prev, sm.last = sm.last, &statsSample{at: now, byDB: cur}
	}
	prev, last := sm.prev, sm.last
	sm.mu.Unlock()
	out := map[string][7]int64{}
	if prev == nil {
		return out
	}
	dur := last.at.Sub(prev.at).Microseconds()
	if dur <= 0 {
		return out
	}
	for db, l := range last.byDB {
		if avg, ok := average(prev.byDB[db], l, dur); ok {
			out[db] = avg
		}
	}
	return out
}

// average is one database's averages from totals o to totals l, dur µs
// apart; false if its totals restarted (a pool was dropped by
// autodb_idle_timeout).
func average(o, l Stats, dur int64) ([7]int64, bool) {
	var avg [7]int64
	if l.Transactions < o.Transactions || l.Queries < o.Queries || l.BytesReceived < o.BytesReceived ||
		l.BytesSent < o.BytesSent || l.Waits < o.Waits {
		return avg, false
	}
	xacts, queries := l.Transactions-o.Transactions, l.Queries-o.Queries
	avg[0] = 1e6 * xacts / dur
	avg[1] = 1e6 * queries / dur
	avg[2] = 1e6 * (l.BytesReceived - o.BytesReceived) / dur
	avg[3] = 1e6 * (l.BytesSent - o.BytesSent) / dur
	if xacts > 0 {
		avg[4] = (l.TransactionTime - o.TransactionTime).Microseconds() / xacts
	}
	if queries > 0 {
		avg[5] = (l.QueryTime - o.QueryTime).Microseconds() / queries
	}
	avg[6] = 1e6 * (l.WaitTime - o.WaitTime).Microseconds() / dur
	return avg, true
}

func totalsOf(st Stats) [7]int64 {
	return [7]int64{st.Transactions, st.Queries, st.BytesReceived, st.BytesSent,
		st.TransactionTime.Microseconds(), st.QueryTime.Microseconds(), st.WaitTime.Microseconds()}
}

// showStats answers SHOW STATS (totals and averages), STATS_TOTALS and
// STATS_AVERAGES.
func (con *Console) showStats(withTotals, withAvgs bool) []byte {
	by, names := dbStats(con.t.Pools())
	avgs := con.stats.averages(time.Now(), by, con.t.Config().StatsPeriod.D())
	cols := showStatsPartCols
	if withTotals && withAvgs {
		cols = showStatsCols
	}
	r := newResult(cols)
	for _, db := range names {
		vals := []any{db}
		if withTotals {
			for _, v := range totalsOf(by[db]) {
				vals = append(vals, v)
			}
		}
		if withAvgs {
			for _, v := range avgs[db] {
				vals = append(vals, v)
			}
		}
		r.row(vals...)
	}
	return r.finish()
}

func (con *Console) showTotals() []byte {
	by, _ := dbStats(con.t.Pools())
	avgs := con.stats.averages(time.Now(), by, con.t.Config().StatsPeriod.D())
	var tot, avg [7]int64
	for db, st := range by {
		for i, v := range totalsOf(st) {
			tot[i] += v
		}
		for i, v := range avgs[db] {
			avg[i] += v
		}
	}
	r := newResult(showTotalsCols)
	names := [7]string{"xact_count", "query_count", "client_bytes", "server_bytes", "xact_time", "query_time", "wait_time"}
	for i, n := range names {
		r.row("total_"+n, tot[i])
	}
	for i, n := range names {
		r.row("avg_"+n, avg[i])
	}
	return r.finish()
}
