package hatest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// Tests run in this order; TestFailover, last, leaves the replica as the
// primary.

func TestRouting(t *testing.T) {
	m := startMux(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for db, want := range map[string]string{"app": "false", "app_ro": "true"} {
		got, err := m.ask(ctx, db, "SELECT pg_is_in_recovery()::text")
		if err != nil || got != want {
			t.Errorf("%s: pg_is_in_recovery() = %q, %v; want %s", db, got, err, want)
		}
	}
	if _, err := m.ask(ctx, "app", "INSERT INTO writes DEFAULT VALUES"); err != nil {
		t.Errorf("write through app: %v", err)
	}
	_, err := m.ask(ctx, "app_ro", "INSERT INTO writes DEFAULT VALUES")
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "25006" {
		t.Errorf("write through app_ro: %v, want 25006", err)
	}
}

// TestTargetSessionAttrs: libpq (psql) and pgx check the session after
// connecting; what mux reports must match the host the entry routes to.
func TestTargetSessionAttrs(t *testing.T) {
	m := startMux(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cases := []struct {
		db, tsa string
		ok      bool
	}{
		{"app", "read-write", true}, {"app_ro", "read-write", false},
		{"app", "standby", false}, {"app_ro", "standby", true},
		{"app", "primary", true}, {"app_ro", "read-only", true},
		{"app", "read-only", false}, {"app_ro", "primary", false},
	}
	for _, c := range cases {
		conn, err := pgconn.Connect(ctx, m.dsn(c.db, "target_session_attrs="+c.tsa))
		if err == nil {
			conn.Close(ctx)
		}
		if (err == nil) != c.ok {
			t.Errorf("pgx %s target_session_attrs=%s: err %v, want ok=%v", c.db, c.tsa, err, c.ok)
		}
		out, err := psql(ctx, m.dsn(c.db, "target_session_attrs="+c.tsa), "SELECT 1")
		if (err == nil) != c.ok {
			t.Errorf("psql %s target_session_attrs=%s: %v %s, want ok=%v", c.db, c.tsa, err, out, c.ok)
		}
	}
}

func psql(ctx context.Context, dsn, sql string) (string, error) {
	cmd := exec.CommandContext(ctx, primary.Bin("psql"), "-X", "-At", "-c", sql, dsn)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	return strings.TrimSpace(string(out)), err
}

// TestReplicaDown: with the replica gone, app_ro falls back to the primary,
// and returns to the replica when it is back.
func TestReplicaDown(t *testing.T) {
	m := startMux(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if got, err := m.ask(ctx, "app_ro", "SELECT pg_is_in_recovery()::text"); err != nil || got != "true" {
		t.Fatalf("app_ro before: %q, %v", got, err)
	}
	if code, body := m.get("/readyz"); code != 200 || body != "ready\n" {
		t.Errorf("/readyz before: %d %q", code, body)
	}
	if err := replica.StopServer(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "app_ro on the primary", func() error {
		got, err := m.ask(ctx, "app_ro", "SELECT pg_is_in_recovery()::text")
		if err == nil && got != "false" {
			err = fmt.Errorf("pg_is_in_recovery() = %s", got)
		}
		return err
	})
	code, body := m.get("/readyz")
	if code != 200 || !strings.Contains(body, "degraded: database app_ro") {
		t.Errorf("/readyz with the replica down: %d %q", code, body)
	}
	_, body = m.get("/metrics")
	down := fmt.Sprintf(`mux_host_up{database="app_ro",host="127.0.0.1:%d"} 0`, replicaFP.Port())
	if !strings.Contains(body, down) {
		t.Errorf("/metrics lacks %s", down)
	}
	if err := replica.StartServer(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 10*time.Second, "app_ro back on the replica", func() error {
		got, err := m.ask(ctx, "app_ro", "SELECT pg_is_in_recovery()::text")
		if err == nil && got != "true" {
			err = fmt.Errorf("pg_is_in_recovery() = %s", got)
		}
		return err
	})
}

// TestBlackHole: the primary stops answering (a partition, not a crash):
// mux takes it out within host_check_timeout, app_ro keeps reading, and
// app writes again once the primary is back.
func TestBlackHole(t *testing.T) {
	m := startMux(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := m.ask(ctx, "app", "INSERT INTO writes DEFAULT VALUES"); err != nil {
		t.Fatal(err)
	}
	primaryFP.BlackHole(true)
	defer primaryFP.BlackHole(false)
	eventually(t, 5*time.Second, "primary marked down", func() error {
		for _, h := range m.p.Hosts() {
			if h.Port == primaryFP.Port() && h.State.String() == "down" {
				return nil
			}
		}
		return errors.New("still up")
	})
	if got, err := m.ask(ctx, "app_ro", "SELECT pg_is_in_recovery()::text"); err != nil || got != "true" {
		t.Errorf("app_ro during the black hole: %q, %v", got, err)
	}
	if code, body := m.get("/readyz"); code != 200 || !strings.Contains(body, "degraded: database app:") {
		t.Errorf("/readyz with the primary black-holed: %d %q", code, body)
	}
	primaryFP.BlackHole(false)
	eventually(t, 10*time.Second, "write after the black hole", func() error {
		_, err := m.ask(ctx, "app", "INSERT INTO writes DEFAULT VALUES")
		return err
	})
}

// TestFailover: the primary crashes (-m immediate) and the replica is
// promoted. Writes through mux succeed again soon after the promotion,
// an idle client keeps its connection, a client mid-query gets an error
// of class 08/57, and the old primary, back on the old timeline, gets no
// writes.
func TestFailover(t *testing.T) {
	m := startMux(t, "")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	idle, err := pgconn.Connect(ctx, m.dsn("app", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close(ctx)
	if _, err := value(ctx, idle, "INSERT INTO writes DEFAULT VALUES"); err != nil {
		t.Fatal(err)
	}
	session, err := pgconn.Connect(ctx, m.dsn("app_session", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer session.Close(ctx)
	if _, err := value(ctx, session, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	busy, err := pgconn.Connect(ctx, m.dsn("app", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close(ctx)
	busyErr := make(chan error, 1)
	go func() { _, err := value(ctx, busy, "SELECT pg_sleep(30)"); busyErr <- err }()
	time.Sleep(200 * time.Millisecond)

	if err := primary.StopImmediate(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-busyErr:
		var pe *pgconn.PgError
		if !errors.As(err, &pe) || !strings.HasPrefix(pe.Code, "08") && !strings.HasPrefix(pe.Code, "57") {
			t.Errorf("client mid-query got %v, want SQLSTATE class 08 or 57", err)
		} else {
			t.Logf("client mid-query got %s: %s", pe.Code, pe.Message)
		}
	case <-time.After(10 * time.Second):
		t.Error("client mid-query got no error")
	}
	promoting := time.Now()
	_, err = value(ctx, session, "SELECT 1")
	var spe *pgconn.PgError
	if !errors.As(err, &spe) || !strings.HasPrefix(spe.Code, "08") && !strings.HasPrefix(spe.Code, "57") {
		t.Errorf("session-mode client on the dead primary got %v, want SQLSTATE class 08 or 57", err)
	} else {
		t.Logf("session-mode client got %s: %s", spe.Code, spe.Message)
	}
	if err := replica.Promote(); err != nil {
		t.Fatal(err)
	}
	promoted := time.Now()
	eventually(t, 10*time.Second, "write after promotion", func() error {
		c, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		_, err := m.ask(c, "app", "INSERT INTO writes DEFAULT VALUES")
		return err
	})
	took := time.Since(promoted)
	t.Logf("first write through mux %v after the promotion (pg_ctl promote -w returned; %v after it was called)",
		took, time.Since(promoting))
	if took > 3*time.Second {
		t.Errorf("writes came back %v after the promotion, want within 3s", took)
	}
	if _, err := value(ctx, idle, "INSERT INTO writes DEFAULT VALUES"); err != nil {
		t.Errorf("idle client after the failover: %v", err)
	}

	// The old primary comes back claiming primary on the old timeline.
	if err := primary.StartServer(); err != nil {
		t.Fatal(err)
	}
	eventually(t, 5*time.Second, "old primary reported", func() error {
		for _, h := range m.p.Hosts() {
			if h.Port == primaryFP.Port() && h.State.String() == "up" && strings.Contains(h.Reason, "also claims primary") {
				return nil
			}
		}
		return fmt.Errorf("hosts: %+v", m.p.Hosts())
	})
	showHosts(ctx, t, m)
	for range 5 {
		port, err := m.ask(ctx, "app", "SELECT inet_server_port()::text")
		if err != nil || port != fmt.Sprint(replica.Port) {
			t.Fatalf("app went to port %q (%v), want the promoted replica's %d", port, err, replica.Port)
		}
	}
}

// showHosts checks SHOW HOSTS after the failover: the promoted replica is
// app's primary, the old primary is up but refused.
func showHosts(ctx context.Context, t *testing.T, m *testMux) {
	var refused, promoted bool
	for _, row := range showHostsRows(ctx, t, m) {
		line := fmt.Sprintf("%s", row)
		t.Logf("SHOW HOSTS: %s", line)
		port, primary, reason := string(row[2]), string(row[5]), string(row[7])
		if string(row[0]) != "app" {
			continue
		}
		refused = refused || port == fmt.Sprint(primaryFP.Port()) && primary == "0" && strings.Contains(reason, "also claims primary")
		promoted = promoted || port == fmt.Sprint(replicaFP.Port()) && primary == "1"
	}
	if !refused || !promoted {
		t.Errorf("SHOW HOSTS: old primary refused %v, promoted replica primary %v", refused, promoted)
	}
}

// showHostsRows runs SHOW HOSTS on m's console.
func showHostsRows(ctx context.Context, t *testing.T, m *testMux) [][][]byte {
	t.Helper()
	conn, err := pgconn.Connect(ctx, m.dsn("pgbouncer", ""))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	res, err := conn.Exec(ctx, "SHOW HOSTS").ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return res[0].Rows
}
