//go:build unix

package main

import (
	"slices"
	"testing"
)

func TestSplitPool(t *testing.T) {
	for _, tc := range []struct {
		size, n int
		want    []int
	}{
		{20, 1, []int{20}},
		{20, 2, []int{10, 10}},
		{20, 3, []int{7, 7, 6}},
		{20, 20, slices.Repeat([]int{1}, 20)},
	} {
		if got := splitPool(tc.size, tc.n); !slices.Equal(got, tc.want) {
			t.Errorf("splitPool(%d, %d) = %v, want %v", tc.size, tc.n, got, tc.want)
		}
	}
}

func TestParseWorkers(t *testing.T) {
	if ws, err := parseWorkers("1, 2,4"); err != nil || !slices.Equal(ws, []int{1, 2, 4}) {
		t.Errorf("parseWorkers(\"1, 2,4\") = %v, %v", ws, err)
	}
	for _, bad := range []string{"", "-1", "1,,2", "x", "2,2"} {
		if ws, err := parseWorkers(bad); err == nil {
			t.Errorf("parseWorkers(%q) = %v, want an error", bad, ws)
		}
	}
}

// TestTargets checks which targets run where and in what order: the
// scaling ones only in the scaling scenarios, direct always first, the
// proxies reversed every other round.
func TestTargets(t *testing.T) {
	ts := targetsOf(options{pgbouncerProcs: 2, muxWorkers: []int{1, 2}})
	keys := func(ts []target) []string {
		var out []string
		for _, t := range ts {
			out = append(out, t.key)
		}
		return out
	}
	var s1, s50 scenario
	for _, sc := range allScenarios() {
		switch sc.key {
		case "S-1":
			s1 = sc
		case "S-50":
			s50 = sc
		}
	}
	if got, want := keys(targetsIn(ts, s1)), []string{"direct", "pgbouncer", "mux"}; !slices.Equal(got, want) {
		t.Errorf("S-1 runs %v, want %v", got, want)
	}
	all := []string{"direct", "pgbouncer", "pgbouncer-x2", "mux", "mux-workers-1", "mux-workers-2"}
	if got := keys(runOrder(targetsIn(ts, s50), 1)); !slices.Equal(got, all) {
		t.Errorf("S-50, round 1 runs %v, want %v", got, all)
	}
	rev := []string{"direct", "mux-workers-2", "mux-workers-1", "mux", "pgbouncer-x2", "pgbouncer"}
	if got := keys(runOrder(targetsIn(ts, s50), 2)); !slices.Equal(got, rev) {
		t.Errorf("S-50, round 2 runs %v, want %v", got, rev)
	}
	if got, want := keys(targetsOf(options{pgbouncerProcs: 1})), []string{"direct", "pgbouncer", "mux"}; !slices.Equal(got, want) {
		t.Errorf("-pgbouncer-procs 1: targets %v, want %v", got, want)
	}
}
