package hatest

// The read/write split and replica lag. The file name sorts before
// ha_test.go: these tests need the pair as it starts (TestFailover, last,
// promotes the replica).

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// splitConfig adds app_split, a read_write_split entry over both hosts,
// and the global keys in global.
func splitConfig(global string) string {
	return fmt.Sprintf(`%s
[databases.app_split]
dbname = "postgres"
user = "postgres"
hosts = [{host = "127.0.0.1", port = %d}, {host = "127.0.0.1", port = %d}]
read_write_split = true
`, global, primaryFP.Port(), replicaFP.Port())
}

// simple runs sql with the simple query protocol and returns the first
// value of its last result.
func simple(ctx context.Context, conn *pgconn.PgConn, sql string) (string, error) {
	res, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return "", err
	}
	for i := len(res) - 1; i >= 0; i-- {
		if len(res[i].Rows) > 0 {
			return string(res[i].Rows[0][0]), nil
		}
	}
	return "", nil
}

func TestReadWriteSplit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, sql := range []string{
		"CREATE TABLE IF NOT EXISTS split_rows (id serial PRIMARY KEY, tag text)",
		"CREATE OR REPLACE FUNCTION split_insert(t text) RETURNS text LANGUAGE sql AS $$ INSERT INTO split_rows (tag) VALUES (t); SELECT t $$",
	} {
		if err := primary.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	if err := replica.WaitReplay(ctx, primary); err != nil {
		t.Fatal(err)
	}
	// The event loops' driver, and the goroutine driver (which waits for
	// a trial where a loop offloads).
	for name, workers := range map[string]string{"loops": "", "goroutines": "workers = 0"} {
		t.Run(name, func(t *testing.T) { splitCases(ctx, t, workers) })
	}
}

// pipelined sends a slow read that writes and, while the replica runs
// it, a plain read, and returns the first value of each answer: the
// second waits until the first has been sent again to the primary, and
// follows it there (the client holds that server until the answer).
func pipelined(ctx context.Context, t *testing.T, conn *pgconn.PgConn, tag string) (first, second string) {
	fe := conn.Frontend()
	fe.Send(&pgproto3.Query{String: fmt.Sprintf("SELECT split_insert('%s') FROM pg_sleep(0.3)", tag)})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	fe.Send(&pgproto3.Query{String: "SELECT pg_is_in_recovery()::text"})
	if err := fe.Flush(); err != nil {
		t.Fatal(err)
	}
	var vals []string
	for ready := 0; ready < 2; {
		msg, err := conn.ReceiveMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		switch m := msg.(type) {
		case *pgproto3.DataRow:
			vals = append(vals, string(m.Values[0]))
		case *pgproto3.ErrorResponse:
			t.Errorf("pipelined: error %s %s", m.Code, m.Message)
			vals = append(vals, "error")
		case *pgproto3.ReadyForQuery:
			ready++
		}
	}
	if len(vals) != 2 {
		t.Fatalf("pipelined: values %q", vals)
	}
	return vals[0], vals[1]
}

func splitCases(ctx context.Context, t *testing.T, workers string) {
	m := startMux(t, splitConfig(workers))
	conn, err := pgconn.Connect(ctx, m.dsn("app_split", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	recovery := "SELECT pg_is_in_recovery()::text"
	for _, c := range []struct{ what, sql, want string }{
		{"autocommit SELECT", recovery, "true"},
		{"READ ONLY block", "BEGIN READ ONLY; " + recovery + "; COMMIT", "true"},
		{"write block", "BEGIN; INSERT INTO split_rows (tag) VALUES ('block'); " + recovery + "; COMMIT", "false"},
	} {
		if got, err := simple(ctx, conn, c.sql); err != nil || got != c.want {
			t.Errorf("%s: pg_is_in_recovery() = %q, %v; want %s", c.what, got, err, c.want)
		}
	}
	// A READ ONLY block over several Queries stays on the replica.
	if _, err := simple(ctx, conn, "BEGIN READ ONLY"); err != nil {
		t.Fatal(err)
	}
	if got, err := simple(ctx, conn, recovery); err != nil || got != "true" {
		t.Errorf("inside BEGIN READ ONLY: %q, %v", got, err)
	}
	if _, err := simple(ctx, conn, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	// The extended protocol goes to the primary.
	if got, err := value(ctx, conn, recovery); err != nil || got != "false" {
		t.Errorf("extended protocol: %q, %v; want false", got, err)
	}
	// A settings change reaches the client's servers on both sides.
	if _, err := simple(ctx, conn, "SET statement_timeout = '7s'"); err != nil {
		t.Fatal(err)
	}
	if got, err := simple(ctx, conn, "SHOW statement_timeout"); err != nil || got != "7s" {
		t.Errorf("SET carried to the replica: %q, %v", got, err)
	}
	// A read that writes: the replica refuses it, the primary runs it.
	tag := fmt.Sprintf("once %q %d", workers, time.Now().UnixNano())
	if got, err := simple(ctx, conn, fmt.Sprintf("SELECT split_insert('%s')", tag)); err != nil || got != tag {
		t.Errorf("SELECT split_insert(): %q, %v; want %s, no error", got, err, tag)
	}
	if n, err := primary.QueryValue(ctx, fmt.Sprintf("SELECT count(*) FROM split_rows WHERE tag = '%s'", tag)); err != nil || n != "1" {
		t.Errorf("rows written by the re-run: %s, %v; want 1", n, err)
	}
	if got, err := simple(ctx, conn, recovery); err != nil || got != "true" {
		t.Errorf("the next read: %q, %v; want true", got, err)
	}
	ptag := fmt.Sprintf("pipelined %q %d", workers, time.Now().UnixNano())
	if first, second := pipelined(ctx, t, conn, ptag); first != ptag || second != "false" {
		t.Errorf("pipelined: %q then %q; want %s then false", first, second, ptag)
	}
	if n, err := primary.QueryValue(ctx, fmt.Sprintf("SELECT count(*) FROM split_rows WHERE tag = '%s'", ptag)); err != nil || n != "1" {
		t.Errorf("rows written by the pipelined re-run: %s, %v; want 1", n, err)
	}
	// pgx checks read-write with SHOW transaction_read_only (simple
	// protocol): the entry writes, so the primary answers.
	rw, err := pgconn.Connect(ctx, m.dsn("app_split", "target_session_attrs=read-write"))
	if err != nil {
		t.Errorf("pgx target_session_attrs=read-write refused app_split: %v", err)
	} else {
		rw.Close(ctx)
	}
}

func TestReplicaLag(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	m := startMux(t, splitConfig(`max_replica_lag = "1s"`))
	onReplica := func(want string) func() error {
		return func() error {
			conn, err := pgconn.Connect(ctx, m.dsn("app_split", ""))
			if err != nil {
				return err
			}
			defer conn.Close(context.Background())
			got, err := simple(ctx, conn, "SELECT pg_is_in_recovery()::text")
			if err == nil && got != want {
				err = fmt.Errorf("pg_is_in_recovery() = %s, want %s", got, want)
			}
			return err
		}
	}
	eventually(t, 10*time.Second, "reads on the replica", onReplica("true"))
	if err := replica.Exec(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	resume := sync.OnceFunc(func() {
		if err := replica.Exec(context.Background(), "SELECT pg_wal_replay_resume()"); err != nil {
			t.Error(err)
		}
	})
	defer resume()
	stop := make(chan struct{})
	done := make(chan struct{})
	stopWriting := sync.OnceFunc(func() { close(stop); <-done })
	defer stopWriting()
	go func() { // the primary keeps writing: the replica falls behind
		defer close(done)
		for {
			select {
			case <-stop:
				return
			case <-time.After(100 * time.Millisecond):
			}
			_ = primary.Exec(ctx, "INSERT INTO writes DEFAULT VALUES")
		}
	}()
	eventually(t, 15*time.Second, "reads on the primary while the replica lags", onReplica("false"))
	lagReason(ctx, t, m)
	stopWriting()
	resume()
	eventually(t, 15*time.Second, "reads back on the replica", onReplica("true"))
}

// lagReason checks that SHOW HOSTS and the metrics show the lag.
func lagReason(ctx context.Context, t *testing.T, m *testMux) {
	found := false
	for _, row := range showHostsRows(ctx, t, m) {
		if string(row[0]) == "app_split" && string(row[2]) == fmt.Sprint(replicaFP.Port()) {
			found = strings.Contains(string(row[7]), "max_replica_lag 1s") && len(row) == 12 && row[10] != nil
			t.Logf("SHOW HOSTS: %s", row)
		}
	}
	if !found {
		t.Error("SHOW HOSTS does not show the replica lagging")
	}
	_, body := m.get("/metrics")
	want := fmt.Sprintf(`mux_host_lagging{database="app_split",host="127.0.0.1:%d"} 1`, replicaFP.Port())
	if !strings.Contains(body, want) || !strings.Contains(body, "mux_host_lag_seconds{") {
		t.Errorf("/metrics lacks %s or mux_host_lag_seconds", want)
	}
}
