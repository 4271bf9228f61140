package metrics

import (
	"sync"
	"time"

	"github.com/muxpg/mux/proxy"
)

// History settings: one sample a second for the last 15 minutes, the span
// the status page's charts show. The ring is allocated once (about 60 KB).
const (
	historyInterval = time.Second
	historyLen      = 900
)

// Sample is what the pools did between two readings of their totals (the
// counters SHOW STATS reads), summed over the pools. Times are in
// microseconds, as PgBouncer's SHOW STATS has them.
type Sample struct {
	T        int64 `json:"t"`        // end of the interval, Unix milliseconds
	Ms       int64 `json:"ms"`       // its length in milliseconds
	Xacts    int64 `json:"xacts"`    // transactions finished
	Queries  int64 `json:"queries"`  // queries finished
	Waits    int64 `json:"waits"`    // times a client asked for a server
	XactUs   int64 `json:"xact_us"`  // time in those transactions
	QueryUs  int64 `json:"query_us"` // time in those queries
	WaitUs   int64 `json:"wait_us"`  // time clients waited for a server
	Received int64 `json:"received"` // bytes from clients
	Sent     int64 `json:"sent"`     // bytes to clients
}

// History keeps the last historyLen samples in a ring of fixed size. It
// is safe for concurrent use: one goroutine adds, status requests read.
type History struct {
	mu     sync.Mutex
	ring   [historyLen]Sample
	next   int // where the next sample goes
	n      int // samples kept, at most historyLen
	last   proxy.PoolStats
	lastAt time.Time // zero until the first reading
}

// Add records the totals read at now. The first reading only sets the
// base. A counter that went down (a dropped pool's totals left the sum)
// counts as no change.
func (h *History) Add(now time.Time, tot proxy.PoolStats) {
	h.mu.Lock()
	defer h.mu.Unlock()
	prev, at := h.last, h.lastAt
	h.last, h.lastAt = tot, now
	if at.IsZero() || !now.After(at) {
		return
	}
	h.ring[h.next] = Sample{
		T:        now.UnixMilli(),
		Ms:       now.Sub(at).Milliseconds(),
		Xacts:    delta(tot.Transactions, prev.Transactions),
		Queries:  delta(tot.Queries, prev.Queries),
		Waits:    delta(tot.Waits, prev.Waits),
		XactUs:   delta(tot.TransactionTime.Microseconds(), prev.TransactionTime.Microseconds()),
		QueryUs:  delta(tot.QueryTime.Microseconds(), prev.QueryTime.Microseconds()),
		WaitUs:   delta(tot.WaitTime.Microseconds(), prev.WaitTime.Microseconds()),
		Received: delta(tot.BytesReceived, prev.BytesReceived),
		Sent:     delta(tot.BytesSent, prev.BytesSent),
	}
	h.next = (h.next + 1) % historyLen
	h.n = min(h.n+1, historyLen)
}

func delta(now, before int64) int64 { return max(now-before, 0) }

// Since returns the samples that end after t (Unix milliseconds), oldest
// first; Since(0) returns all of them.
func (h *History) Since(t int64) []Sample {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := make([]Sample, 0, h.n)
	for i := range h.n {
		s := h.ring[(h.next-h.n+i+historyLen)%historyLen]
		if s.T > t {
			out = append(out, s)
		}
	}
	return out
}

// totalsSource is what the sampler reads; *proxy.Proxy is one.
type totalsSource interface {
	Totals() proxy.PoolStats
}

// sampleLoop adds a reading of src to h every historyInterval until done
// is closed, the first one at once.
func sampleLoop(h *History, src totalsSource, done <-chan struct{}) {
	tick := time.NewTicker(historyInterval)
	defer tick.Stop()
	for {
		h.Add(time.Now(), src.Totals())
		select {
		case <-done:
			return
		case <-tick.C:
		}
	}
}
