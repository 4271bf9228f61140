package metrics

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/muxpg/mux/internal/leakcheck"
	"github.com/muxpg/mux/proxy"
)

func totals(xacts, queries int64, queryTime time.Duration) proxy.PoolStats {
	return proxy.PoolStats{Transactions: xacts, Queries: queries, QueryTime: queryTime, Waits: xacts, WaitTime: time.Duration(xacts) * time.Millisecond}
}

// The first reading is the base; each later one is a sample of the
// differences, stamped with its end and length.
func TestHistoryDeltas(t *testing.T) {
	var h History
	t0 := time.UnixMilli(1_000_000)
	h.Add(t0, totals(100, 200, time.Second))
	if got := h.Since(0); len(got) != 0 {
		t.Fatalf("after the base reading: %v, want no samples", got)
	}
	h.Add(t0.Add(1500*time.Millisecond), totals(130, 260, 2*time.Second))
	got := h.Since(0)
	want := Sample{T: t0.UnixMilli() + 1500, Ms: 1500, Xacts: 30, Queries: 60, Waits: 30, QueryUs: 1_000_000, WaitUs: 30_000}
	if len(got) != 1 || got[0] != want {
		t.Fatalf("samples = %+v, want [%+v]", got, want)
	}
	// A dropped pool's totals leave the sum: no negative sample.
	h.Add(t0.Add(2500*time.Millisecond), totals(10, 20, time.Second))
	if s := h.Since(want.T); len(s) != 1 || s[0].Xacts != 0 || s[0].QueryUs != 0 {
		t.Fatalf("after totals went down: %+v, want one zero sample", s)
	}
	// A reading that is not later than the last is only a new base.
	h.Add(t0.Add(2500*time.Millisecond), totals(50, 60, time.Second))
	if n := len(h.Since(0)); n != 2 {
		t.Fatalf("%d samples after a reading at the same time, want 2", n)
	}
}

// The ring keeps the last historyLen samples, oldest first, and Since
// filters by end time.
func TestHistoryRing(t *testing.T) {
	var h History
	t0 := time.UnixMilli(5_000_000)
	const n = historyLen + 37
	for i := range n + 1 {
		h.Add(t0.Add(time.Duration(i)*time.Second), totals(int64(i*i), 0, 0))
	}
	all := h.Since(0)
	if len(all) != historyLen {
		t.Fatalf("%d samples kept, want %d", len(all), historyLen)
	}
	for i, s := range all {
		k := int64(n - historyLen + 1 + i) // the reading this sample ends at
		if s.T != t0.UnixMilli()+k*1000 || s.Xacts != k*k-(k-1)*(k-1) || s.Ms != 1000 {
			t.Fatalf("sample %d = %+v, want the one ending at reading %d", i, s, k)
		}
	}
	cut := all[historyLen-10].T
	if tail := h.Since(cut); len(tail) != 9 || tail[0].T != cut+1000 {
		t.Fatalf("Since(%d) = %d samples from %d, want 9 from %d", cut, len(tail), tail[0].T, cut+1000)
	}
	if none := h.Since(all[historyLen-1].T); len(none) != 0 {
		t.Fatalf("Since(the last) = %v, want none", none)
	}
}

type countingTotals struct{ reads atomic.Int64 }

func (c *countingTotals) Totals() proxy.PoolStats {
	n := c.reads.Add(1)
	return proxy.PoolStats{Transactions: n * 10}
}

// The sampler reads at once and every interval, and ends when told.
func TestSampleLoopStops(t *testing.T) {
	var h History
	src := &countingTotals{}
	done := make(chan struct{})
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		sampleLoop(&h, src, done)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for src.reads.Load() < 3 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	close(done)
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("sampleLoop did not end")
	}
	got := h.Since(0)
	if len(got) < 2 || got[0].Xacts != 10 || got[0].Ms < 500 {
		t.Fatalf("samples = %+v, want at least 2 of 10 transactions, about a second apart", got)
	}
	leakcheck.Check(t, 5*time.Second)
}
