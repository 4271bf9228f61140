package proxy

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// runTool runs one of Postgres's client programs (psql, pgbench) with a
// bounded run time and returns stdout and stderr.
func runTool(t *testing.T, timeout time.Duration, dir string, env []string, name string, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, cluster.Bin(name), args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	return stdout.String(), stderr.String(), err
}

func exitString(err error) string {
	if err == nil {
		return "0"
	}
	return err.Error()
}

func pgEnv(host string, port int, user, password, db string) []string {
	return []string{
		"PGHOST=" + host, "PGPORT=" + strconv.Itoa(port), "PGUSER=" + user,
		"PGPASSWORD=" + password, "PGDATABASE=" + db, "PGSSLMODE=disable",
		"PGAPPNAME=", "PGOPTIONS=", "PGCONNECT_TIMEOUT=10",
	}
}

// psqlScript runs testdata/script with psql -X -a, returning everything it
// printed (stderr after stdout).
func psqlScript(t *testing.T, env []string, script string) string {
	t.Helper()
	stdout, stderr, err := runTool(t, time.Minute, "testdata", env, "psql", "-X", "-a", "-f", script)
	// psql exits non-zero after a lost connection; callers judge the output.
	return stdout + "\n--- stderr ---\n" + stderr + "\n--- exit ---\n" + exitString(err)
}

// The same psql script gives the same output directly and through mux in
// session and transaction mode.
func TestPsqlScriptSameAsDirect(t *testing.T) {
	direct := psqlScript(t, pgEnv(cluster.Host, cluster.Port, "muxuser", "muxpass", "muxtest"), "compare.sql")
	for _, want := range []string{"cmp_items", "no_such_table", "date, dried", "ELDERBERRY", "hello from plpgsql", "division by zero"} {
		if !strings.Contains(direct, want) {
			t.Fatalf("direct run lacks %q; the script did not run as intended:\n%s", want, direct)
		}
	}
	for _, mode := range []string{"session", "transaction"} {
		t.Run(mode, func(t *testing.T) {
			m := startMux(t, "pool_mode = \""+mode+"\"\ndefault_pool_size = 2")
			got := psqlScript(t, pgEnv(m.host, m.port, "muxuser", "muxpass", "muxtest"), "compare.sql")
			if got != direct {
				t.Fatalf("output through mux (%s mode) differs from direct:\n--- direct ---\n%s\n--- mux ---\n%s", mode, direct, got)
			}
		})
	}
}

func TestStatementModeRefusesTransactions(t *testing.T) {
	m := startMux(t, `pool_mode = "statement"`)
	out := psqlScript(t, pgEnv(m.host, m.port, "muxuser", "muxpass", "muxtest"), "statement_mode.sql")
	if !strings.Contains(out, "autocommit works") {
		t.Fatalf("single statements should work in statement mode:\n%s", out)
	}
	if !strings.Contains(out, "transaction blocks are not allowed in statement pooling mode") {
		t.Fatalf("want a clear refusal of the transaction block:\n%s", out)
	}
	if strings.Count(out, "(1 row)") != 1 {
		t.Fatalf("a statement inside the refused transaction ran:\n%s", out)
	}
	// The pool is not left with an open transaction: another client works.
	conn := m.connect(t)
	if got := queryString(t, conn, "SELECT 'fine'::text"); got != "fine" {
		t.Fatal(got)
	}
}
