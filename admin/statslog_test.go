package admin

import (
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// log_stats: each call logs every database's averages since the previous
// one, with SHOW STATS_AVERAGES' names; the first only samples.
func TestLogStats(t *testing.T) {
	f := &fakeTarget{pools: []Pool{{Database: "app", User: "u", Stats: Stats{Transactions: 10, Queries: 20}}}}
	con := New(f)
	core, logs := observer.New(zapcore.InfoLevel)
	log := zap.New(core)
	t0 := time.Unix(1000, 0)
	con.LogStats(t0, log)
	if logs.Len() != 0 {
		t.Fatalf("first call logged %v", logs.All())
	}
	f.pools[0].Stats = Stats{Transactions: 40, Queries: 80, BytesReceived: 3000, QueryTime: 600 * time.Millisecond, WaitTime: time.Second}
	con.LogStats(t0.Add(30*time.Second), log)
	entries := logs.FilterMessage("stats").All()
	if len(entries) != 1 {
		t.Fatalf("logged %v", logs.All())
	}
	got := entries[0].ContextMap()
	want := map[string]any{"database": "app", "avg_xact_count": int64(1), "avg_query_count": int64(2), "avg_recv": int64(100),
		"avg_sent": int64(0), "avg_xact_time": int64(0), "avg_query_time": int64(10000), "avg_wait_time": int64(33333)}
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
}
