package hatest

import (
	"context"
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/muxpg/mux/examples/grafana"
)

// The Grafana dashboard's per-host series (its other series are checked
// in package metrics) are ones mux serves for a primary and a replica,
// with the labels the dashboard groups by. This file's name sorts before
// TestFailover's, which leaves no replica.
func TestDashboardHostSeries(t *testing.T) {
	exprs, err := grafana.Queries()
	if err != nil {
		t.Fatal(err)
	}
	m := startMux(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, db := range []string{"app", "app_ro"} {
		if _, err := m.ask(ctx, db, "SELECT 1"); err != nil {
			t.Fatalf("%s: %v", db, err)
		}
	}
	eventually(t, 10*time.Second, "every per-host series of the dashboard", func() error {
		_, body := m.get("/metrics")
		for _, expr := range exprs {
			for _, family := range grafana.Families(expr) {
				if !strings.HasPrefix(family, "mux_host_") {
					continue
				}
				if err := servesWithLabels(body, family, grafana.GroupedBy(expr)); err != nil {
					return fmt.Errorf("%q: %w", expr, err)
				}
			}
		}
		return nil
	})
}

// servesWithLabels checks that the exposition body has a sample of family
// carrying every one of labels.
func servesWithLabels(body, family string, labels []string) error {
	re := regexp.MustCompile(`(?m)^` + regexp.QuoteMeta(family) + `\{([^}]*)\}`)
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		ok := true
		for _, l := range labels {
			ok = ok && strings.Contains(m[1], l+"=")
		}
		if ok {
			return nil
		}
	}
	return fmt.Errorf("no %s sample with labels %v", family, labels)
}
