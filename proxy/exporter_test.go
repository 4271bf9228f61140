package proxy

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
)

// exporterColumns are, per SHOW command, the columns the Prometheus
// community's pgbouncer_exporter turns into metrics (true) or labels
// (false). It scrapes each with the simple query protocol through lib/pq
// and counts the scrape failed (pgbouncer_up 0) when a command errors or
// a metric column does not parse as a number.
var exporterColumns = map[string]map[string]bool{
	"DATABASES": {"name": false, "host": false, "port": false, "database": false, "force_user": false, "pool_mode": false,
		"pool_size": true, "reserve_pool": true, "reserve_pool_size": true, "max_connections": true,
		"current_connections": true, "paused": true, "disabled": true},
	"STATS_TOTALS": {"database": false, "query_count": true, "query_time": true, "bytes_received": true, "requests": true,
		"bytes_sent": true, "wait_time": true, "xact_count": true, "xact_time": true, "client_parse_count": true,
		"server_parse_count": true, "bind_count": true, "server_assignment_count": true},
	"POOLS": {"database": false, "user": false, "cl_active": true, "cl_active_cancel_req": true, "cl_waiting": true,
		"cl_waiting_cancel_req": true, "sv_active": true, "sv_active_cancel": true, "sv_being_canceled": true,
		"sv_idle": true, "sv_used": true, "sv_tested": true, "sv_login": true, "maxwait": true},
}

// TestPgBouncerExporterScrape runs the console commands a
// pgbouncer_exporter scrape runs, as it runs them, and checks that each
// would count as a success.
func TestPgBouncerExporterScrape(t *testing.T) {
	m := startMux(t, adminTop)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	m.connect(t) // a client, so that the lists have rows
	conn := m.adminConn(t, "muxuser", "muxpass")
	simple := func(q string) ([]string, [][]any) {
		t.Helper()
		rows, err := conn.Query(ctx, q, pgx.QueryExecModeSimpleProtocol)
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		defer rows.Close()
		var names []string
		for _, fd := range rows.FieldDescriptions() {
			names = append(names, fd.Name)
		}
		var out [][]any
		for rows.Next() {
			v, err := rows.Values()
			if err != nil {
				t.Fatalf("%s: %v", q, err)
			}
			out = append(out, v)
		}
		if err := rows.Err(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		return names, out
	}
	simple("SHOW STATS") // the exporter's ping

	names, rows := simple("SHOW LISTS;")
	if len(names) != 2 || len(rows) == 0 {
		t.Fatalf("SHOW LISTS: columns %v, %d rows", names, len(rows))
	}
	for _, r := range rows {
		if !numeric(r[1]) {
			t.Errorf("SHOW LISTS %v: items %#v is not a number", r[0], r[1])
		}
	}
	names, rows = simple("SHOW CONFIG;")
	if len(names) != 3 && len(names) != 4 {
		t.Fatalf("SHOW CONFIG: %d columns", len(names))
	}
	seen := 0
	for _, r := range rows {
		if k := r[0]; k == "max_client_conn" || k == "max_user_connections" {
			seen++
			if !numeric(r[1]) {
				t.Errorf("SHOW CONFIG %v = %#v is not a number", k, r[1])
			}
		}
	}
	if seen == 0 {
		t.Error("SHOW CONFIG has no max_client_conn")
	}
	names, _ = simple("SHOW CLIENTS;")
	for _, c := range []string{"database", "user", "state", "application_name"} {
		if !contains(names, c) {
			t.Errorf("SHOW CLIENTS has no column %s", c)
		}
	}
	for cmd, cols := range exporterColumns {
		names, rows := simple("SHOW " + cmd + ";")
		found := 0
		for i, name := range names {
			metric, used := cols[name]
			if !used {
				continue
			}
			found++
			for _, r := range rows {
				if metric && !numeric(r[i]) {
					t.Errorf("SHOW %s %s = %#v is not a number", cmd, name, r[i])
				}
				switch r[i].(type) {
				case nil, string, int32, int64: // lib/pq gives text or int64, which the exporter formats
				default:
					if !metric {
						t.Errorf("SHOW %s label %s = %#v is neither text nor an integer", cmd, name, r[i])
					}
				}
			}
		}
		if found == 0 || len(rows) == 0 {
			t.Errorf("SHOW %s: %d rows, %d of the exporter's columns", cmd, len(rows), found)
		}
	}
	names, rows = simple("SHOW VERSION;")
	if len(names) != 1 || names[0] != "version" || len(rows) != 1 {
		t.Errorf("SHOW VERSION: columns %v, rows %v", names, rows)
	}
}

// numeric reports whether a console value is what the exporter parses as
// a number: an integer, a float, a numeric's text, or NULL.
func numeric(v any) bool {
	switch v := v.(type) {
	case nil, int32, int64, float64:
		return true
	case string:
		_, err := strconv.ParseFloat(v, 64)
		return err == nil
	}
	// numeric: lib/pq gives the text, which the exporter parses.
	if n, ok := v.(pgtype.Numeric); ok {
		f, err := n.Float64Value()
		return err == nil && f.Valid
	}
	return false
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
