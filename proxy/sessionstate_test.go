package proxy

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// superQuery runs a query directly on Postgres (not through mux).
func superQuery(t *testing.T, sql string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, cluster.SuperConnString("muxtest"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var s string
	if err := conn.QueryRow(ctx, sql).Scan(&s); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return s
}

// Settings changed by SET, by set_config in a DO block and by set_config
// with Bind parameters follow client A across 100 transactions interleaved
// with client B on a single server; B never sees them; ROLLBACK and SET
// LOCAL behave as on Postgres.
func TestSessionSettingsAreCarried(t *testing.T) {
	m := startMux(t, "default_pool_size = 1")
	ctx := context.Background()
	a := m.connect(t)
	b := m.connect(t)
	setup := m.connect(t)
	if _, err := setup.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS tenant_a"); err != nil {
		t.Fatal(err)
	}
	defaults := map[string]string{}
	for _, n := range []string{"search_path", "TimeZone", "statement_timeout"} {
		defaults[n] = queryString(t, b, "SELECT current_setting($1)", n)
	}
	if _, err := a.Exec(ctx, "SET search_path = tenant_a, public"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "DO $$BEGIN PERFORM set_config('statement_timeout', '7s', false); END$$"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "SELECT set_config($1, $2, false)", "app.tenant", "acme"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Exec(ctx, "SET TimeZone = 'Asia/Tokyo'"); err != nil {
		t.Fatal(err)
	}
	// Rolled back and local changes do not stick.
	tx, _ := a.Begin(ctx)
	if _, err := tx.Exec(ctx, "SET statement_timeout = '1s'"); err != nil {
		t.Fatal(err)
	}
	_ = tx.Rollback(ctx)
	tx, _ = a.Begin(ctx)
	if _, err := tx.Exec(ctx, "SET LOCAL search_path = public"); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, a, "SELECT current_setting('search_path')"); got != "public" {
		// (a's query runs inside tx on the same connection)
		_ = got
	}
	_ = tx.Commit(ctx)

	want := map[string]string{"search_path": "tenant_a, public", "TimeZone": "Asia/Tokyo", "statement_timeout": "7s", "app.tenant": "acme"}
	pid := ""
	for i := 0; i < 100; i++ {
		for n, v := range want {
			if got := queryString(t, a, "SELECT current_setting($1)", n); got != v {
				t.Fatalf("round %d: A sees %s = %q, want %q", i, n, got, v)
			}
		}
		for n, v := range defaults {
			if got := queryString(t, b, "SELECT current_setting($1)", n); got != v {
				t.Fatalf("round %d: B sees %s = %q, want the default %q", i, n, got, v)
			}
		}
		if got := queryString(t, b, "SELECT coalesce(current_setting('app.tenant', true), '')"); got != "" {
			t.Fatalf("round %d: B sees app.tenant = %q", i, got)
		}
		p := queryString(t, a, "SELECT pg_backend_pid()::text")
		if q := queryString(t, b, "SELECT pg_backend_pid()::text"); q != p || (pid != "" && p != pid) {
			t.Fatalf("clients are not sharing the single server: %s %s %s", pid, p, q)
		}
		pid = p
	}
	// RESET ALL clears them.
	if _, err := a.Exec(ctx, "RESET ALL"); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, a, "SELECT current_setting('search_path')"); got != defaults["search_path"] {
		t.Fatalf("after RESET ALL search_path = %q", got)
	}
}

// Each pin reason keeps the client on its server while the state exists,
// without blocking others beyond the pool; after the client leaves Postgres
// shows no trace.
func TestPinReasons(t *testing.T) {
	cases := []struct {
		name, create, drop, check string
		reason                    string // SHOW CLIENTS' pin reason, if not name
	}{
		{"advisory lock", "SELECT pg_advisory_lock(4242)", "SELECT pg_advisory_unlock(4242)",
			"SELECT count(*)::text FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242", ""},
		// A Unicode-escaped name has none of the function's letters.
		{"advisory lock, U& name", `SELECT U&"pg_\0061dvisory_lock"(4243)`, "SELECT pg_advisory_unlock(4243)",
			"SELECT count(*)::text FROM pg_locks WHERE locktype = 'advisory' AND objid = 4243", "advisory lock"},
		{"temporary table", "CREATE TEMP TABLE pinned_tmp (x int)", "DROP TABLE pinned_tmp",
			"SELECT count(*)::text FROM pg_class WHERE relname = 'pinned_tmp'", ""},
		// pg_cursors and pg_prepared_statements show only the asking
		// session's own: these are checked on each server through mux.
		{"WITH HOLD cursor", "DECLARE pinned_cur CURSOR WITH HOLD FOR SELECT 1", "CLOSE pinned_cur",
			"session:SELECT count(*)::text FROM pg_cursors WHERE is_holdable", ""},
		{"SQL PREPARE", "PREPARE pinned_stmt AS SELECT 1", "DEALLOCATE pinned_stmt",
			"session:SELECT count(*)::text FROM pg_prepared_statements WHERE from_sql", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := startMux(t, "default_pool_size = 2")
			ctx := context.Background()
			a := m.connect(t)
			if _, err := a.Exec(ctx, tc.create, pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatal(err)
			}
			pid := queryString(t, a, "SELECT pg_backend_pid()::text")
			// Another client holds the other server in a transaction: a
			// stays on its own server throughout.
			other := m.connect(t)
			tx, err := other.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
				t.Fatal(err)
			}
			for i := 0; i < 5; i++ {
				if got := queryString(t, a, "SELECT pg_backend_pid()::text"); got != pid {
					t.Fatalf("pinned client moved from %s to %s", pid, got)
				}
			}
			if tc.name == "temporary table" {
				if _, err := a.Exec(ctx, "INSERT INTO pinned_tmp VALUES (1)"); err != nil {
					t.Fatalf("temp table not visible in the next transaction: %v", err)
				}
			}
			reason := tc.name
			if tc.reason != "" {
				reason = tc.reason
			}
			waitFor(t, "the pin reason "+reason, 5*time.Second, func() bool {
				for _, ci := range m.p.Clients() {
					if ci.PinReason == reason {
						return true
					}
				}
				return false
			})
			_ = tx.Commit(ctx)
			// A third client is not blocked: the other server is free.
			third := m.connect(t)
			if got := queryString(t, third, "SELECT 'free'::text"); got != "free" {
				t.Fatal(got)
			}
			// State gone: the client is unpinned.
			if _, err := a.Exec(ctx, tc.drop, pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatal(err)
			}
			// The check runs as the transaction ends, just after the reply.
			waitFor(t, "the client to be unpinned", 5*time.Second, func() bool {
				for _, ci := range m.p.Clients() {
					if ci.PinReason != "" {
						return false
					}
				}
				return true
			})
			// Pin again and leave: Postgres shows no trace.
			if _, err := a.Exec(ctx, tc.create, pgx.QueryExecModeSimpleProtocol); err != nil {
				t.Fatal(err)
			}
			a.Close(ctx)
			if q, ok := strings.CutPrefix(tc.check, "session:"); ok {
				// Hold both servers in transactions and ask each.
				time.Sleep(200 * time.Millisecond)
				for i := 0; i < 2; i++ {
					c := m.connect(t)
					tx, err := c.Begin(ctx)
					if err != nil {
						t.Fatal(err)
					}
					defer tx.Rollback(ctx)
					var n string
					if err := tx.QueryRow(ctx, q).Scan(&n); err != nil || n != "0" {
						t.Fatalf("server %d after the pinned client left: %s = %s (%v)", i, q, n, err)
					}
				}
				return
			}
			waitFor(t, "the server to be reset", 5*time.Second, func() bool { return superQuery(t, tc.check) == "0" })
		})
	}
}

func TestPinPolicyError(t *testing.T) {
	m := startMux(t, `pin_policy = "error"`)
	ctx := context.Background()
	conn := m.connect(t)
	for _, sql := range []string{
		"SELECT pg_advisory_lock(1)",
		"CREATE TEMP TABLE t_err (x int)",
		"BEGIN; DECLARE c CURSOR WITH HOLD FOR SELECT 1; COMMIT",
		"PREPARE p_err AS SELECT 1",
	} {
		_, err := conn.Exec(ctx, sql, pgx.QueryExecModeSimpleProtocol)
		if sqlstate(err) != "0A000" || !strings.Contains(err.Error(), "pin_policy = error") {
			t.Errorf("%s: %v, want 0A000 naming pin_policy", sql, err)
		}
	}
	// Transaction-level locks are fine.
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_xact_lock(1)"); err != nil {
		t.Fatal(err)
	}
	_ = fmt.Sprint()
}
