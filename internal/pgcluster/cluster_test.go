//go:build unix

package pgcluster

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

func queryUser(ctx context.Context, dsn string) (string, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", err
	}
	defer conn.Close(context.Background())
	var u string
	err = conn.QueryRow(ctx, "SELECT current_user").Scan(&u)
	return u, err
}

func TestCluster(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	c, err := Start(Options{
		MaxConnections: 50,
		HBA:            []string{"host all blocked 127.0.0.1/32 reject"},
		Settings:       map[string]string{"work_mem": "8MB", "application_name": "it's"},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Stop()

	if c.Host != "127.0.0.1" || c.Port == 0 || c.SuperUser != "postgres" {
		t.Fatalf("unexpected cluster fields: %+v", c)
	}
	if _, err := os.Stat(c.SocketDir + "/.s.PGSQL." + itoa(c.Port)); err != nil {
		t.Fatalf("unix socket: %v", err)
	}

	if err := c.Exec(ctx, `CREATE ROLE alice LOGIN PASSWORD 'secret'; CREATE ROLE blocked LOGIN PASSWORD 'x'`); err != nil {
		t.Fatal(err)
	}
	if err := c.Exec(ctx, `SELECT 1/0`); err == nil {
		t.Fatal("expected an error from SELECT 1/0")
	}

	alice := "host=127.0.0.1 port=" + itoa(c.Port) + " user=alice password=secret dbname=postgres sslmode=disable"
	if u, err := queryUser(ctx, alice); err != nil || u != "alice" {
		t.Fatalf("connect as alice: %q, %v", u, err)
	}
	bad := strings.Replace(alice, "password=secret", "password=wrong", 1)
	if _, err := queryUser(ctx, bad); err == nil {
		t.Fatal("wrong password accepted")
	}
	blocked := "host=127.0.0.1 port=" + itoa(c.Port) + " user=blocked password=x dbname=postgres sslmode=disable"
	if _, err := queryUser(ctx, blocked); err == nil {
		t.Fatal("extra HBA line not applied")
	}
	// Superuser via the unix socket.
	if u, err := queryUser(ctx, "host="+c.SocketDir+" port="+itoa(c.Port)+" user=postgres dbname=postgres"); err != nil || u != "postgres" {
		t.Fatalf("unix socket connect: %q, %v", u, err)
	}

	conn, err := pgx.Connect(ctx, c.SuperConnString("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	var workMem, maxConn, appName, scram string
	err = conn.QueryRow(ctx, "SELECT current_setting('work_mem'), current_setting('max_connections'), "+
		"current_setting('application_name'), (SELECT rolpassword FROM pg_authid WHERE rolname = 'alice')").
		Scan(&workMem, &maxConn, &appName, &scram)
	conn.Close(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if workMem != "8MB" || maxConn != "50" || !strings.HasPrefix(scram, "SCRAM-SHA-256$") {
		t.Fatalf("settings: work_mem=%s max_connections=%s password=%.14s", workMem, maxConn, scram)
	}
	_ = appName // overridden by the client; only checks that quoting did not break the config

	// psql with Env.
	cmd := exec.CommandContext(ctx, c.Bin("psql"), "-XAtc", "SELECT current_user")
	cmd.Env = append(os.Environ(), c.Env()...)
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "postgres" {
		t.Fatalf("psql: %v: %s", err, out)
	}
	if p := c.Bin("pgbench"); !strings.HasPrefix(p, "/") || !isExecutable(p) {
		t.Fatalf("Bin(pgbench) = %q", p)
	}

	for _, mode := range []string{"fast", "immediate"} {
		if err := c.Restart(mode); err != nil {
			t.Fatal(err)
		}
		if u, err := queryUser(ctx, alice); err != nil || u != "alice" {
			t.Fatalf("after restart %s: %q, %v", mode, u, err)
		}
	}
	if err := c.Restart("bogus"); err == nil {
		t.Fatal("bogus restart mode accepted")
	}

	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.tmpDir); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("temp dir still there: %v", err)
	}
	if err := c.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if err := c.Restart("fast"); err == nil {
		t.Fatal("Restart after Stop succeeded")
	}
	var pgErr *pgconn.ConnectError
	if err := c.Exec(ctx, "SELECT 1"); !errors.As(err, &pgErr) {
		t.Fatalf("Exec after Stop: %v", err)
	}
}

func TestStartBadSetting(t *testing.T) {
	_, err := Start(Options{Settings: map[string]string{"no_such_setting_xyz": "1"}})
	if err == nil {
		t.Fatal("expected error")
	}
	if !strings.Contains(err.Error(), "no_such_setting_xyz") {
		t.Fatalf("error does not include the log: %v", err)
	}
}

func TestQuoteDSN(t *testing.T) {
	for in, want := range map[string]string{"db": "db", "": "''", "a b": "'a b'", `it's\`: `'it\'s\\'`} {
		if got := quoteDSN(in); got != want {
			t.Errorf("quoteDSN(%q) = %s, want %s", in, got, want)
		}
	}
}

func itoa(i int) string { return strconv.Itoa(i) }

// With MUX_PG_BINDIR naming a directory without the server programs,
// Start fails at once with ErrNoServerPrograms and the package to install.
func TestStartNoServerPrograms(t *testing.T) {
	t.Setenv(BinDirEnv, t.TempDir())
	_, err := Start(Options{})
	if !errors.Is(err, ErrNoServerPrograms) {
		t.Fatalf("Start: %v, want ErrNoServerPrograms", err)
	}
	if !strings.Contains(err.Error(), "apt-get install postgresql") {
		t.Fatalf("error does not name the package: %v", err)
	}
}
