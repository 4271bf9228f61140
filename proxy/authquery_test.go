package proxy

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
)

const authQueryTop = `auth_type = "md5"
auth_user = "authq_super"
default_pool_size = 3`

func TestAuthQuery(t *testing.T) {
	m := startMux(t, authQueryTop)
	for _, tc := range []struct{ user, pw string }{
		{"aq_scram", "aqscrampass"}, // SCRAM secret in Postgres: SCRAM with the client, pass-through to the server
		{"aq_md5", "aqmd5pass"},     // md5 secret: md5 both ways
	} {
		conn := m.connectAs(t, tc.user, tc.pw, "muxtest")
		if got := queryString(t, conn, "SELECT current_user::text"); got != tc.user {
			t.Fatalf("current_user %q, want %q", got, tc.user)
		}
		if got := connectErr(t, m.dsn(tc.user, "wrong", "muxtest")); got != "28P01" {
			t.Fatalf("%s with a wrong password: SQLSTATE %q, want 28P01", tc.user, got)
		}
	}
	for _, tc := range []struct{ user, pw string }{
		{"aq_expired", "aqexpiredpass"},
		{"aq_nologin", "aqnologinpass"},
		{"nobody_at_all", "x"},
	} {
		if got := connectErr(t, m.dsn(tc.user, tc.pw, "muxtest")); got != "28P01" {
			t.Fatalf("%s: SQLSTATE %q, want 28P01", tc.user, got)
		}
	}
	// The client's search_path (pointing at a schema with a fake pg_authid
	// that would accept the expired role) cannot change the lookup: it runs
	// on mux's own connection, schema-qualified.
	if got := connectErr(t, m.dsn("aq_expired", "aqexpiredpass", "muxtest", "options='-c search_path=evil,pg_catalog'")); got != "28P01" {
		t.Fatalf("expired role with a hostile search_path: SQLSTATE %q, want 28P01", got)
	}
}

// A SCRAM-only role whose password is nowhere in mux's config logs in, in
// transaction mode, across several server connections: mux logs in to
// Postgres with the keys the client's SCRAM proof showed.
func TestSCRAMPassThrough(t *testing.T) {
	m := startMux(t, "auth_user = \"authq_super\"\ndefault_pool_size = 3")
	ctx := context.Background()
	var wg sync.WaitGroup
	pids := make(chan string, 30)
	errs := make(chan error, 10)
	for i := 0; i < 6; i++ {
		conn := m.connectAs(t, "aq_scram", "aqscrampass", "muxtest")
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := 0; k < 5; k++ {
				tx, err := conn.Begin(ctx)
				if err != nil {
					errs <- err
					return
				}
				var pid, user string
				if err := tx.QueryRow(ctx, "SELECT pg_backend_pid()::text, current_user::text FROM pg_sleep(0.02)").Scan(&pid, &user); err != nil {
					errs <- err
					return
				}
				if user != "aq_scram" {
					errs <- fmt.Errorf("current_user %q", user)
				}
				if err := tx.Commit(ctx); err != nil {
					errs <- err
					return
				}
				pids <- pid
			}
		}()
	}
	wg.Wait()
	close(errs)
	close(pids)
	for err := range errs {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for p := range pids {
		seen[p] = true
	}
	if len(seen) < 2 {
		t.Fatalf("only %d server connection(s) used; want several", len(seen))
	}
	if _, ok := m.cfg.Users["aq_scram"]; ok {
		t.Fatal("aq_scram must not be in mux's config for this test")
	}
}

// PgBouncer's auth_file format is read directly.
func TestAuthFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "userlist.txt")
	if err := os.WriteFile(path, []byte(`;; users from PgBouncer
"aq_scram" "aqscrampass"
`), 0o600); err != nil {
		t.Fatal(err)
	}
	m := startMux(t, fmt.Sprintf("auth_file = %q", path))
	conn := m.connectAs(t, "aq_scram", "aqscrampass", "muxtest")
	if got := queryString(t, conn, "SELECT current_user::text"); got != "aq_scram" {
		t.Fatal(got)
	}
}

// A database entry's auth_query and auth_dbname replace the global ones for
// its clients; auth_dbname naming a [databases] entry runs the lookup on
// that entry's server and database, as PgBouncer does.
func TestAuthQueryPerDatabase(t *testing.T) {
	const inPostgres = `SELECT rolname::text, rolpassword FROM pg_catalog.pg_authid WHERE rolname = $1 AND pg_catalog.current_database() = 'postgres'`
	m := startMux(t, fmt.Sprintf(`auth_type = "md5"
auth_user = "authq_super"

[databases.authsrc]
host = %[1]q
port = %[2]d
dbname = "postgres"

[databases.viaentry]
host = %[1]q
port = %[2]d
dbname = "muxtest"
auth_query = %[3]q
auth_dbname = "authsrc"

[databases.ownquery]
host = %[1]q
port = %[2]d
dbname = "muxtest"
auth_query = %[3]q
`, cluster.Host, cluster.Port, inPostgres))
	conn := m.connectAs(t, "aq_md5", "aqmd5pass", "viaentry")
	if got := queryString(t, conn, "SELECT current_database()::text"); got != "muxtest" {
		t.Fatalf("current_database %q, want muxtest", got)
	}
	// ownquery's query runs in its own database, muxtest, and so finds
	// nobody; the global query (muxtest's entry) still finds the role.
	if got := connectErr(t, m.dsn("aq_md5", "aqmd5pass", "ownquery")); got != "28P01" {
		t.Fatalf("entry auth_query in the wrong database: SQLSTATE %q, want 28P01", got)
	}
	m.connectAs(t, "aq_md5", "aqmd5pass", "muxtest")
}
