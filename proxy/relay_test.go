package proxy

import (
	"context"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5"
)

func TestSimpleQuery(t *testing.T) {
	m := startMux(t, "")
	conn := m.connect(t)
	if got := queryString(t, conn, "SELECT 'hello'::text"); got != "hello" {
		t.Fatalf("got %q", got)
	}
	if got := queryString(t, conn, "SELECT current_user::text"); got != "muxuser" {
		t.Fatalf("current_user = %q", got)
	}
}

// Two clients with different TimeZone, application_name and search_path
// share one server; each always sees its own values.
func TestParamsPerClientOnSharedServer(t *testing.T) {
	m := startMux(t, "default_pool_size = 1")
	ctx := context.Background()
	setup := m.connect(t)
	if _, err := setup.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS sa; CREATE SCHEMA IF NOT EXISTS sb"); err != nil {
		t.Fatal(err)
	}
	setup.Close(ctx)

	type client struct {
		tz, app, path string
		conn          *pgx.Conn
	}
	clients := []*client{
		{tz: "America/New_York", app: "client_a", path: "sa"},
		{tz: "Asia/Tokyo", app: "client_b", path: "sb"},
	}
	for _, cl := range clients {
		cl.conn = m.connect(t,
			"timezone="+cl.tz,
			"application_name="+cl.app,
			fmt.Sprintf("options='-c search_path=%s'", cl.path))
	}
	var pid string
	for round := 0; round < 10; round++ {
		for i, cl := range clients {
			var gotPid, tz, app, path string
			err := cl.conn.QueryRow(ctx, "SELECT pg_backend_pid()::text, current_setting('TimeZone'), current_setting('application_name'), current_setting('search_path')").Scan(&gotPid, &tz, &app, &path)
			if err != nil {
				t.Fatal(err)
			}
			if pid == "" {
				pid = gotPid
			}
			if gotPid != pid {
				t.Fatalf("round %d client %d on backend %s, want the single pooled backend %s", round, i, gotPid, pid)
			}
			if tz != cl.tz || app != cl.app || path != cl.path {
				t.Fatalf("round %d client %d sees tz=%q app=%q path=%q, want %q %q %q", round, i, tz, app, path, cl.tz, cl.app, cl.path)
			}
		}
		// Interleave transactions: a's transaction ends before b's starts
		// (the pool has one server), each sees its own values inside.
		for _, cl := range clients {
			tx, err := cl.conn.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			var tz, app string
			if err := tx.QueryRow(ctx, "SELECT current_setting('TimeZone'), current_setting('application_name')").Scan(&tz, &app); err != nil {
				t.Fatal(err)
			}
			if tz != cl.tz || app != cl.app {
				t.Fatalf("in transaction: tz=%q app=%q, want %q %q", tz, app, cl.tz, cl.app)
			}
			if err := tx.Commit(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
}
