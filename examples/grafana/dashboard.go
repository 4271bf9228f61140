// Package grafana holds the Grafana dashboard for mux's /metrics
// (mux-dashboard.json) and reads its queries, so that tests can check
// every series it shows is one mux serves.
package grafana

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
)

//go:embed mux-dashboard.json
var dashboard []byte

// Queries returns the PromQL of every panel's targets.
func Queries() ([]string, error) {
	var d struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(dashboard, &d); err != nil {
		return nil, fmt.Errorf("mux-dashboard.json: %w", err)
	}
	var exprs []string
	for _, p := range d.Panels {
		if len(p.Targets) == 0 {
			return nil, fmt.Errorf("mux-dashboard.json: panel %q has no query", p.Title)
		}
		for _, t := range p.Targets {
			exprs = append(exprs, t.Expr)
		}
	}
	return exprs, nil
}

var (
	seriesName = regexp.MustCompile(`\b(?:mux|go|process)_[a-z_]+\b`)
	byClause   = regexp.MustCompile(`by \(([a-z_, ]+)\)`)
)

// Families returns the metric families expr reads (a histogram's
// _bucket series as its family).
func Families(expr string) []string {
	var out []string
	for _, n := range seriesName.FindAllString(expr, -1) {
		out = append(out, strings.TrimSuffix(n, "_bucket"))
	}
	return out
}

// GroupedBy returns the labels expr groups by, but a histogram's le.
func GroupedBy(expr string) []string {
	var labels []string
	for _, m := range byClause.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(m[1], ",") {
			if l = strings.TrimSpace(l); l != "le" {
				labels = append(labels, l)
			}
		}
	}
	return labels
}
