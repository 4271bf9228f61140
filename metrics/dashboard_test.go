package metrics

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"

	"github.com/muxpg/mux/examples/grafana"
)

// Every series the Grafana dashboard queries is one mux serves, with the
// labels it groups by: a renamed metric breaks this test, not a dashboard.
// The per-host series need a replica: internal/hatest checks those.
func TestGrafanaDashboardQueriesExist(t *testing.T) {
	exprs, err := grafana.Queries()
	if err != nil {
		t.Fatal(err)
	}
	m := startMux(t, workloadConfig())
	dashboardWorkload(t, m)
	var missing []string
	deadline := time.Now().Add(5 * time.Second) // a pin is decided off the client's path
	for {
		missing = dashboardProblems(m.scrape(t), exprs)
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, p := range missing {
		t.Error(p)
	}
}

// dashboardProblems lists the dashboard's series (but mux_host_*) that
// fams lacks, or lacks a grouping label of.
func dashboardProblems(fams families, exprs []string) []string {
	var out []string
	for _, expr := range exprs {
		for _, family := range grafana.Families(expr) {
			if strings.HasPrefix(family, "mux_host_") {
				continue
			}
			f := fams[family]
			if f == nil {
				out = append(out, fmt.Sprintf("%s (in %q) is not in mux's /metrics", family, expr))
				continue
			}
			for _, label := range grafana.GroupedBy(expr) {
				if !hasLabel(f.GetMetric(), label) {
					out = append(out, fmt.Sprintf("%q groups by %q, which %s does not have", expr, label, family))
				}
			}
		}
	}
	return out
}

func hasLabel(ms []*dto.Metric, name string) bool {
	return slices.ContainsFunc(ms, func(m *dto.Metric) bool {
		return slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool { return l.GetName() == name })
	})
}

// dashboardWorkload makes the series the dashboard shows appear: a failed
// login, an error, a wait for a server, a prepared statement and a pinned
// client.
func dashboardWorkload(t *testing.T, m *testMux) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if conn, err := pgx.Connect(ctx, m.dsn("muxuser", "wrong", "muxtest")); err == nil {
		conn.Close(ctx)
		t.Fatal("login with a wrong password succeeded")
	}
	conns := make([]*pgx.Conn, 3)
	for i := range conns {
		conn, err := pgx.Connect(ctx, m.dsn("muxuser", "muxpass", "muxtest"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) }) // open while the test scrapes
		conns[i] = conn
	}
	// The pool has two servers: the third client waits while two hold one.
	tx, err := conns[0].Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conns[1].Exec(ctx, "CREATE TEMP TABLE pinned (x int)"); err != nil { // pins conns[1]
		t.Fatal(err)
	}
	committed := make(chan struct{})
	defer func() { <-committed }()
	go func() {
		defer close(committed)
		time.Sleep(200 * time.Millisecond)
		_ = tx.Commit(ctx)
	}()
	var n int
	if err := conns[2].QueryRow(ctx, "SELECT $1::int", 1).Scan(&n); err != nil { // a prepared statement
		t.Fatal(err)
	}
	if _, err := conns[2].Exec(ctx, "SELECT 1/0"); err == nil {
		t.Fatal("SELECT 1/0 succeeded")
	}
}
