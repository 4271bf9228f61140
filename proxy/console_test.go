package proxy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// clientPtr returns the SHOW CLIENTS ptr of the client whose
// application_name is app.
func clientPtr(t *testing.T, console *pgx.Conn, app string) string {
	t.Helper()
	row := adminQuery(t, console, "SHOW CLIENTS").find("application_name", app)
	if row == nil {
		t.Fatalf("no client %q in SHOW CLIENTS", app)
	}
	return row["ptr"]
}

// expectKilled checks that c's next query fails with 57P01.
func expectKilled(t *testing.T, name string, c *pgx.Conn) {
	t.Helper()
	_, err := c.Exec(context.Background(), "SELECT 1")
	if err == nil {
		t.Errorf("%s client survived", name)
	} else if code := sqlstate(err); code != "" && code != "57P01" {
		t.Errorf("%s client: %v, want 57P01", name, err)
	}
}

// KILL_CLIENT closes that client only, with 57P01, rolling back what its
// transaction did; an unknown id is an error naming it.
func TestConsoleKillClient(t *testing.T) {
	m := startMux(t, adminTop)
	ctx := context.Background()
	console := m.adminConn(t, "muxuser", "muxpass")
	victim := m.connect(t, "application_name=victim")
	other := m.connect(t, "application_name=other")
	mustExec(ctx, t, victim, "CREATE TABLE IF NOT EXISTS kill_client_t (x int)", "TRUNCATE kill_client_t",
		"BEGIN", "INSERT INTO kill_client_t VALUES (1)")
	queryString(t, other, "SELECT 'other'::text")

	adminQuery(t, console, "KILL_CLIENT "+clientPtr(t, console, "victim"))
	expectKilled(t, "killed", victim)
	if got := queryString(t, other, "SELECT count(*)::text FROM kill_client_t"); got != "0" {
		t.Errorf("killed client's transaction left %s rows, want 0 (rolled back)", got)
	}
	if code := adminErr(t, console, "KILL_CLIENT 0xdeadbeef"); code != "42704" {
		t.Errorf("unknown client: SQLSTATE %s, want 42704", code)
	}
	adminQuery(t, console, "SHOW VERSION") // the console is still there
}

// KILL without a database closes every client of every database (but not
// the consoles) and pauses everything until RESUME.
func TestConsoleKillAll(t *testing.T) {
	m := startMux(t, adminTop)
	console := m.adminConn(t, "muxuser", "muxpass")
	a := m.connect(t)
	b := m.connectAs(t, "muxuser", "muxpass", "bench")
	queryString(t, a, "SELECT 'a'::text")
	queryString(t, b, "SELECT 'b'::text")

	adminQuery(t, console, "KILL")
	expectKilled(t, "muxtest", a)
	expectKilled(t, "bench", b)
	state := adminQuery(t, console, "SHOW STATE")
	if row := state.find("key", "paused"); row == nil || row["value"] != "yes" {
		t.Errorf("SHOW STATE after KILL: %v, want paused = yes", state.rows)
	}
	adminQuery(t, console, "RESUME")
	c := m.connect(t)
	queryString(t, c, "SELECT 'after resume'::text")
}

// SHOW STATE has PgBouncer's shape: key/value text rows active, paused,
// suspended, each yes or no.
func TestConsoleShowState(t *testing.T) {
	m := startMux(t, adminTop)
	console := m.adminConn(t, "muxuser", "muxpass")
	check := func(want string) {
		t.Helper()
		res := adminQuery(t, console, "SHOW STATE")
		if res.cols != "key:25 value:25" {
			t.Fatalf("SHOW STATE columns %q", res.cols)
		}
		var got []string
		for _, row := range res.rows {
			got = append(got, row["key"]+"="+row["value"])
		}
		if s := strings.Join(got, " "); s != want {
			t.Errorf("SHOW STATE: %s, want %s", s, want)
		}
	}
	check("active=yes paused=no suspended=no")
	adminQuery(t, console, "PAUSE")
	check("active=no paused=yes suspended=no")
	adminQuery(t, console, "RESUME")
	check("active=yes paused=no suspended=no")
}

// The console's SHUTDOWN hands its hook the drain: plain SHUTDOWN and
// WAIT_FOR_CLIENTS SIGTERM's, WAIT_FOR_SERVERS SIGINT's.
func TestConsoleShutdownModes(t *testing.T) {
	m := startMux(t, adminTop)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	modes := make(chan DrainMode, 4)
	setAdminHooks(m.p, nil, func(mode DrainMode) { modes <- mode })
	console := m.adminConn(t, "muxuser", "muxpass")
	if code := adminErr(t, console, "SHUTDOWN NOW"); code != "08P01" {
		t.Errorf("SHUTDOWN NOW: SQLSTATE %s, want 08P01", code)
	}
	for _, tc := range []struct {
		q    string
		want DrainMode
	}{
		{"SHUTDOWN", WaitForClients},
		{"shutdown wait_for_clients", WaitForClients},
		{"SHUTDOWN WAIT_FOR_SERVERS;", CloseBetweenTransactions},
	} {
		console := m.adminConn(t, "muxuser", "muxpass")
		if _, err := consoleExec(ctx, console.PgConn(), tc.q); err == nil {
			t.Fatalf("%s answered; the session should have ended", tc.q)
		}
		if got := <-modes; got != tc.want {
			t.Errorf("%s: mode %d, want %d", tc.q, got, tc.want)
		}
	}
}

// SHUTDOWN WAIT_FOR_SERVERS closes idle clients between transactions.
func TestConsoleShutdownWaitForServers(t *testing.T) {
	m := startMux(t, adminTop)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	setAdminHooks(m.p, nil, func(mode DrainMode) { go func() { _ = m.p.Drain(ctx, mode) }() })
	idle := m.connect(t)
	queryString(t, idle, "SELECT 'idle'::text")
	console := m.adminConn(t, "muxuser", "muxpass")
	if _, err := consoleExec(ctx, console.PgConn(), "SHUTDOWN WAIT_FOR_SERVERS"); err == nil {
		t.Fatal("SHUTDOWN answered; the session should have ended")
	}
	got, err := readToEOF(idle, 5*time.Second)
	if err != nil || !strings.Contains(got, "57P01") {
		t.Fatalf("idle client: read %q, %v; want FATAL 57P01 and EOF", got, err)
	}
}

// SET changes a reloadable setting in force (SHOW CONFIG and the pools'
// size follow); an invalid value is refused naming the key, with the
// running value kept; a setting SET cannot change is refused by name.
func TestConsoleSet(t *testing.T) {
	m := startMux(t, adminTop)
	console := m.adminConn(t, "muxuser", "muxpass")
	c := m.connect(t)
	queryString(t, c, "SELECT 'pool exists'::text")
	adminQuery(t, console, "SET default_pool_size = 3")
	adminQuery(t, console, "SET query_wait_timeout = '45'")
	cfg := adminQuery(t, console, "SHOW CONFIG")
	if row := cfg.find("key", "default_pool_size"); row == nil || row["value"] != "3" {
		t.Errorf("SHOW CONFIG default_pool_size: %v, want 3", row)
	}
	if got := m.p.config().QueryWaitTimeout.D(); got != 45*time.Second {
		t.Errorf("query_wait_timeout %v, want 45s", got)
	}
	for _, pl := range m.p.poolsOf("muxtest") {
		if size := pl.Config().MaxSize; size != 3 {
			t.Errorf("pool size %d after SET, want 3", size)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, err := consoleExec(ctx, console.PgConn(), "SET default_pool_size = many")
	if code := sqlstate(err); code != "22023" || !strings.Contains(err.Error(), "default_pool_size") {
		t.Errorf("invalid value: %v, want 22023 naming the key", err)
	}
	_, err = consoleExec(ctx, console.PgConn(), "SET listen = '0.0.0.0:1'")
	if code := sqlstate(err); code != "55P02" || !strings.Contains(err.Error(), "listen") {
		t.Errorf("unsettable key: %v, want 55P02 naming it", err)
	}
	if got := m.p.config().DefaultPoolSize; got != 3 {
		t.Errorf("default_pool_size %d after refused SETs, want 3", got)
	}
}
