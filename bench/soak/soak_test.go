//go:build unix

package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestParseMetrics(t *testing.T) {
	in := `# HELP go_goroutines Number of goroutines that currently exist.
# TYPE go_goroutines gauge
go_goroutines 42
mux_clients{database="soak",state="active",user="soak"} 3
mux_clients{database="soak",state="idle",user="soak"} 1997
mux_servers{database="soak",state="idle",user="a b}"} 20
go_memstats_heap_inuse_bytes 1.2e+07
`
	m, err := parseMetrics(strings.NewReader(in))
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]float64{
		"go_goroutines": 42, "mux_clients": 2000, "mux_servers": 20, "go_memstats_heap_inuse_bytes": 12e6,
	} {
		if m[name] != want {
			t.Errorf("%s = %v, want %v", name, m[name], want)
		}
	}
	if _, err := parseMetrics(strings.NewReader("go_goroutines x\n")); err == nil {
		t.Error("bad value accepted")
	}
}

func TestRSSWindow(t *testing.T) {
	var ss []sample
	ss = append(ss, sample{phase: "baseline", rss: 1})
	// 10 minutes every 10 s: 100 MiB for the first half, then a rise of
	// 1 MiB per minute.
	for i := 1; i <= 60; i++ {
		rss := int64(100 << 20)
		if i > 30 {
			rss += int64(i-30) << 20 / 6
		}
		ss = append(ss, sample{phase: "load", t: time.Duration(i) * 10 * time.Second, rss: rss})
	}
	ss = append(ss, sample{phase: "after", rss: 1})
	tr, ok := rssWindow(ss, 10*time.Minute, 5*time.Minute)
	if !ok {
		t.Fatal("no trend")
	}
	if tr.n != 31 || tr.from != 5*time.Minute || tr.to != 10*time.Minute {
		t.Fatalf("window: n=%d from=%v to=%v", tr.n, tr.from, tr.to)
	}
	// first two: 100 and 100+1/6 MiB; last two: 100+29/6 and 100+30/6.
	want := 100 * ((59.0 / 12) - (1.0 / 12)) / (100 + 1.0/12)
	if math.Abs(tr.pct-want) > 1e-4 {
		t.Errorf("pct = %v, want %v", tr.pct, want)
	}
	if math.Abs(tr.fitPct-5) > 0.01 {
		t.Errorf("fitPct = %v, want 5", tr.fitPct)
	}
	if _, ok := rssWindow(ss[:3], 10*time.Minute, 5*time.Minute); ok {
		t.Error("trend from too few samples")
	}
}

func TestKindMix(t *testing.T) {
	total := 0
	for _, m := range mix {
		total += m.pct
	}
	if total != 100 {
		t.Fatalf("mix adds up to %d%%", total)
	}
	c := kindCounts(2000)
	if c[kPrepared] != 840 || c[kListen] != 100 || c[kReconnect] != 60 {
		t.Errorf("counts %v", c)
	}
}
