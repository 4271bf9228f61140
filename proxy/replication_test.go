package proxy

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/muxpg/mux/internal/pgtest"
)

// Replication connections through mux, against a primary of their own
// (the package's cluster has wal_level=replica and no replication role):
// wal_level=logical, a role repl with REPLICATION and a SCRAM password,
// and a pg_hba.conf line that lets it replicate over TCP.
func startReplPrimary(t *testing.T) *pgtest.Cluster {
	t.Helper()
	c, err := pgtest.Start(pgtest.Options{
		MaxConnections: 50,
		HBA:            []string{"host replication repl 127.0.0.1/32 scram-sha-256"},
		Settings: map[string]string{
			"wal_level": "logical", "max_wal_senders": "10", "max_replication_slots": "10",
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, q := range []string{
		"CREATE ROLE repl LOGIN REPLICATION PASSWORD 'replpass'",
		"CREATE ROLE norepl LOGIN PASSWORD 'noreplpass'",
		"CREATE DATABASE repldb OWNER repl",
		"CREATE TABLE marker (v text); INSERT INTO marker VALUES ('before the backup')",
	} {
		if err := c.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// replMuxTop is mux's configuration for a primary: pg_basebackup always
// asks for database "replication", so that needs an entry; repldb is a
// database for logical replication and ordinary clients. top goes first.
func replMuxTop(c *pgtest.Cluster, top string) string {
	return fmt.Sprintf(`%s

[databases.replication]
host = %q
port = %d

[databases.repldb]
host = %q
port = %d

[users.repl]
password = "replpass"

[users.norepl]
password = "noreplpass"
`, top, c.Host, c.Port, c.Host, c.Port)
}

// connectRepl opens a pgconn connection through m with replication=kind.
func connectRepl(t *testing.T, m *testMux, user, password, db, kind string) (*pgconn.PgConn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	conn, err := pgconn.Connect(ctx, m.dsn(user, password, db, "replication="+kind))
	if err == nil {
		t.Cleanup(func() { conn.Close(context.Background()) })
	}
	return conn, err
}

// simple runs a walsender command and returns its rows.
func simple(t *testing.T, conn *pgconn.PgConn, cmd string) [][][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := conn.Exec(ctx, cmd).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", cmd, err)
	}
	var rows [][][]byte
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("%s: %v", cmd, r.Err)
		}
		rows = append(rows, r.Rows...)
	}
	return rows
}

// TestReplicationBaseBackup: pg_basebackup -X stream through mux makes a
// copy of the primary that starts as a server of its own and holds the
// primary's data; a pooled client works meanwhile and its pool is the only
// one.
func TestReplicationBaseBackup(t *testing.T) {
	primary := startReplPrimary(t)
	m := startMux(t, replMuxTop(primary, `auth_type = "scram-sha-256"`))
	pooled := m.connect(t)

	copyCluster, err := pgtest.StartBackup(m.host, m.port, "repl", []string{"PGPASSWORD=replpass"},
		"-X", "stream", "-Fp", "--checkpoint=fast", "--no-sync")
	if err != nil {
		t.Fatalf("pg_basebackup through mux: %v", err)
	}
	t.Cleanup(func() { _ = copyCluster.Stop() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if v, err := copyCluster.QueryValue(ctx, "SELECT 1"); err != nil || v != "1" {
		t.Fatalf("SELECT 1 on the copy = %q, %v", v, err)
	}
	if v, err := copyCluster.QueryValue(ctx, "SELECT v FROM marker"); err != nil || v != "before the backup" {
		t.Fatalf("marker on the copy = %q, %v", v, err)
	}
	if got := queryString(t, pooled, "SELECT current_user::text"); got != "muxuser" {
		t.Fatalf("pooled client after the backup: %q", got)
	}
	for _, pl := range m.p.Pools() {
		if pl.Database != "muxtest" {
			t.Errorf("pool %s/%s exists: replication must not make pools", pl.Database, pl.User)
		}
	}
	waitNoClients(t, m, 1)
}

// waitNoClients waits until m has want logged-in clients: a replication
// client's session ends (and is unregistered) when it leaves.
func waitNoClients(t *testing.T, m *testMux, want int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d clients logged in", want), 20*time.Second, func() bool { return m.p.loggedIn() == want })
}

// TestReplicationLogicalStream: a logical replication connection through
// mux runs IDENTIFY_SYSTEM, creates a slot and streams: an INSERT on the
// primary arrives as XLogData. SHOW CLIENTS sees the client holding its
// server; a pooled client is unaffected meanwhile.
func TestReplicationLogicalStream(t *testing.T) {
	primary := startReplPrimary(t)
	m := startMux(t, replMuxTop(primary, `pool_mode = "transaction"`))
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dsn := fmt.Sprintf("host=%s port=%d user=repl password=replpass dbname=repldb sslmode=disable", primary.Host, primary.Port)
	if err := execAs(ctx, dsn, "CREATE TABLE items (id int PRIMARY KEY, name text)"); err != nil {
		t.Fatal(err)
	}

	conn, err := connectRepl(t, m, "repl", "replpass", "repldb", "database")
	if err != nil {
		t.Fatalf("logical replication connection through mux: %v", err)
	}
	sys := simple(t, conn, "IDENTIFY_SYSTEM")
	if len(sys) != 1 || len(sys[0]) != 4 || string(sys[0][3]) != "repldb" {
		t.Fatalf("IDENTIFY_SYSTEM = %q", sys)
	}
	slot := simple(t, conn, "CREATE_REPLICATION_SLOT muxslot TEMPORARY LOGICAL test_decoding")
	if len(slot) != 1 || string(slot[0][0]) != "muxslot" {
		t.Fatalf("CREATE_REPLICATION_SLOT = %q", slot)
	}

	info := clientInfo(t, m, "repldb")
	if info.State != "active" || info.ServerPID == 0 || info.PoolMode != "session" {
		t.Fatalf("SHOW CLIENTS of the replication client: %+v", info)
	}

	conn.Frontend().Send(&pgproto3.Query{String: "START_REPLICATION SLOT muxslot LOGICAL 0/0"})
	if err := conn.Frontend().Flush(); err != nil {
		t.Fatal(err)
	}
	msg, err := conn.ReceiveMessage(ctx)
	if _, ok := msg.(*pgproto3.CopyBothResponse); !ok || err != nil {
		t.Fatalf("START_REPLICATION answered %T, %v; want CopyBothResponse", msg, err)
	}

	// A pooled client, in transaction mode, while the stream is open.
	pooled := m.connect(t)
	if err := execAs(ctx, dsn, "INSERT INTO items VALUES (42, 'through mux')"); err != nil {
		t.Fatal(err)
	}
	if got := queryString(t, pooled, "SELECT 6 * 7"); got != "42" {
		t.Fatalf("pooled client: %q", got)
	}
	want := []byte("table public.items: INSERT: id[integer]:42 name[text]:'through mux'")
	for {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			t.Fatalf("waiting for the INSERT's XLogData: %v", err)
		}
		cd, ok := msg.(*pgproto3.CopyData)
		if !ok {
			t.Fatalf("got %T in the stream", msg)
		}
		// 'w': XLogData (1 + 8 + 8 + 8 bytes of header); 'k': keepalive.
		if len(cd.Data) > 25 && cd.Data[0] == 'w' && bytes.Equal(cd.Data[25:], want) {
			break
		}
	}
	conn.Close(ctx)
	waitNoClients(t, m, 1)
	for _, pl := range m.p.Pools() {
		if pl.Database == "repldb" {
			t.Errorf("replication made a pool: %+v", pl)
		}
	}
	// The walsender is gone with the client: mux closed its server.
	waitFor(t, "the walsender to end", 20*time.Second, func() bool {
		n, err := primary.QueryValue(ctx, "SELECT count(*) FROM pg_stat_replication")
		return err == nil && n == "0"
	})
}

// execAs runs sql on a direct connection.
func execAs(ctx context.Context, dsn, sql string) error {
	conn, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, sql).ReadAll()
	return err
}

// clientInfo returns the one client of db that SHOW CLIENTS lists.
func clientInfo(t *testing.T, m *testMux, db string) ClientInfo {
	t.Helper()
	var found []ClientInfo
	for _, c := range m.p.Clients() {
		if c.Database == db {
			found = append(found, c)
		}
	}
	if len(found) != 1 {
		t.Fatalf("clients of %s: %+v, want one", db, found)
	}
	return found[0]
}

// TestReplicationHBA: in auth_hba_file, the database keyword "replication"
// matches physical replication connections and nothing else; "all" does
// not match them; a logical one matches by its database name.
func TestReplicationHBA(t *testing.T) {
	primary := startReplPrimary(t)
	path := writeHBA(t, `host all          muxuser 127.0.0.1/32 scram-sha-256
host replication  repl    127.0.0.1/32 md5
host all          repl    127.0.0.1/32 reject
`)
	m := startMux(t, replMuxTop(primary, fmt.Sprintf("auth_hba_file = %q", path)))

	conn, err := connectRepl(t, m, "repl", "replpass", "replication", "true")
	if err != nil {
		t.Fatalf("physical replication, replication row: %v", err)
	}
	if sys := simple(t, conn, "IDENTIFY_SYSTEM"); len(sys) != 1 || len(sys[0]) != 4 {
		t.Fatalf("IDENTIFY_SYSTEM = %q", sys)
	}
	conn.Close(context.Background())

	for _, tc := range []struct {
		name, user, password, db, replication string
		message                               string
	}{
		{"logical does not match the keyword", "repl", "replpass", "repldb", "database", "rejects"},
		{"ordinary does not match the keyword", "repl", "replpass", "repldb", "false", "rejects"},
		{"all does not match physical", "muxuser", "muxpass", "replication", "true", "no pg_hba.conf entry for replication connection"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := connectRepl(t, m, tc.user, tc.password, tc.db, tc.replication)
			if sqlstate(err) != "28000" || !strings.Contains(err.Error(), tc.message) {
				t.Fatalf("got %v; want 28000 with %q", err, tc.message)
			}
		})
	}
	// The first row still admits ordinary clients.
	if got := queryString(t, m.connect(t), "SELECT 1::text"); got != "1" {
		t.Fatal(got)
	}
}

// TestReplicationSubscriber: a real logical subscriber (CREATE
// SUBSCRIPTION on a second cluster) whose connection string points at
// mux gets the table's rows, the initial copy and a later INSERT.
func TestReplicationSubscriber(t *testing.T) {
	primary := startReplPrimary(t)
	m := startMux(t, replMuxTop(primary, ""))
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dsn := fmt.Sprintf("host=%s port=%d user=repl password=replpass dbname=repldb sslmode=disable", primary.Host, primary.Port)
	if err := execAs(ctx, dsn, `CREATE TABLE items (id int PRIMARY KEY, price float8);
INSERT INTO items VALUES (1, 0.1);
CREATE PUBLICATION pub FOR TABLE items`); err != nil {
		t.Fatal(err)
	}
	sub, err := pgtest.Start(pgtest.Options{MaxConnections: 30})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Stop() }) // before mux stops: its walreceivers leave first
	if err := sub.Exec(ctx, "CREATE TABLE items (id int PRIMARY KEY, price float8)"); err != nil {
		t.Fatal(err)
	}
	if err := sub.Exec(ctx, fmt.Sprintf(
		"CREATE SUBSCRIPTION sub CONNECTION 'host=%s port=%d user=repl password=replpass dbname=repldb sslmode=disable' PUBLICATION pub",
		m.host, m.port)); err != nil {
		t.Fatalf("CREATE SUBSCRIPTION through mux: %v", err)
	}
	if err := execAs(ctx, dsn, "INSERT INTO items VALUES (2, 1.0/3)"); err != nil {
		t.Fatal(err)
	}
	// The values arrive exact (the subscriber's startup options, with
	// extra_float_digits, reach its walsender through mux).
	var got string
	waitFor(t, "the subscriber to receive both rows", time.Minute, func() bool {
		got, err = sub.QueryValue(ctx, "SELECT coalesce(string_agg(id::text, ',' ORDER BY id), '') FROM items WHERE price = CASE id WHEN 1 THEN 0.1 ELSE 1.0/3 END")
		return err == nil && got == "1,2"
	})
	n, err := primary.QueryValue(ctx, "SELECT count(*) FROM pg_stat_replication WHERE application_name = 'sub'")
	if err != nil || n != "1" {
		t.Fatalf("walsenders of the subscription on the primary: %q, %v", n, err)
	}
	if info := clientInfo(t, m, "repldb"); info.State != "active" {
		t.Fatalf("SHOW CLIENTS of the subscriber: %+v", info)
	}
}

// TestReplicationKill: KILL_CLIENT ends a replication client with 57P01
// and mux closes its walsender with it.
func TestReplicationKill(t *testing.T) {
	primary := startReplPrimary(t)
	m := startMux(t, replMuxTop(primary, ""))
	conn, err := connectRepl(t, m, "repl", "replpass", "replication", "on")
	if err != nil {
		t.Fatal(err)
	}
	simple(t, conn, "IDENTIFY_SYSTEM")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	walsenders := func() string {
		n, _ := primary.QueryValue(ctx, "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'walsender'")
		return n
	}
	if n := walsenders(); n != "1" {
		t.Fatalf("%s walsenders, want 1", n)
	}
	if err := m.p.killClient(clientInfo(t, m, "replication").ID); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "IDENTIFY_SYSTEM").ReadAll()
	if sqlstate(err) != "57P01" {
		t.Fatalf("after KILL_CLIENT: %v, want 57P01", err)
	}
	waitFor(t, "the walsender to end", 20*time.Second, func() bool { return walsenders() == "0" })
	waitNoClients(t, m, 0)

	// Postgres's refusal reaches the client as Postgres sent it: a role
	// without REPLICATION; and mux's: the admin console.
	if _, err := connectRepl(t, m, "norepl", "noreplpass", "repldb", "database"); sqlstate(err) != "42501" {
		t.Errorf("role without REPLICATION: %v, want 42501", err)
	}
	if _, err := connectRepl(t, m, "repl", "replpass", "pgbouncer", "true"); sqlstate(err) != "0A000" {
		t.Errorf("admin console: %v, want 0A000", err)
	}
	waitNoClients(t, m, 0)
}
