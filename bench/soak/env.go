//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/muxpg/mux/bench/internal/proc"
	"github.com/muxpg/mux/internal/pgtest"
)

// The role and database the clients use. mux checks clients' SCRAM proofs
// against the role's stored secret and logs in to Postgres as the role.
const (
	soakUser     = "soak"
	soakPassword = "soak"
	soakDB       = "soak"
)

// env is the running Postgres and mux.
type env struct {
	o       options
	tmp     string
	cluster *pgtest.Cluster
	secret  string // rolpassword of soakUser
	pgVer   string

	muxBin   string
	muxPort  int
	httpPort int
	muxLog   string
	mux      *exec.Cmd
	muxDone  chan error
	muxLimit string // "Max open files" of the mux process
}

// startPostgres starts the cluster, creates the role and database and runs
// pgbench -i against Postgres directly.
func (e *env) startPostgres(ctx context.Context) error {
	c, err := pgtest.Start(pgtest.Options{MaxConnections: 100})
	if err != nil {
		return err
	}
	e.cluster = c
	for _, sql := range []string{
		"SET password_encryption = 'scram-sha-256'; CREATE ROLE " + soakUser + " LOGIN PASSWORD '" + soakPassword + "'",
		"CREATE DATABASE " + soakDB + " OWNER " + soakUser,
	} {
		if err := c.Exec(ctx, sql); err != nil {
			return err
		}
	}
	conn, err := pgconn.Connect(ctx, c.SuperConnString("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	rs, err := conn.Exec(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = '"+soakUser+"'; SHOW server_version").ReadAll()
	if err != nil {
		return err
	}
	if len(rs) != 2 || len(rs[0].Rows) != 1 || len(rs[1].Rows) != 1 ||
		!strings.HasPrefix(string(rs[0].Rows[0][0]), "SCRAM-SHA-256$") {
		return errors.New("could not read the SCRAM secret of the soak role")
	}
	e.secret = string(rs[0].Rows[0][0])
	e.pgVer = string(rs[1].Rows[0][0])

	logf("pgbench -i -s %d (Postgres %s, directly)", e.o.scale, e.pgVer)
	cmd := exec.CommandContext(ctx, c.Bin("pgbench"), "-i", "-q", "-s", strconv.Itoa(e.o.scale),
		"-h", c.Host, "-p", strconv.Itoa(c.Port), "-U", soakUser, soakDB)
	cmd.Env = append(withoutPG(os.Environ()), "PGPASSWORD="+soakPassword, "PGSSLMODE=disable")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %v\n%s", err, out)
	}
	return nil
}

func withoutPG(env []string) []string {
	var out []string
	for _, kv := range env {
		if !strings.HasPrefix(kv, "PG") {
			out = append(out, kv)
		}
	}
	return out
}

// buildMux builds ./cmd/mux of the module this program belongs to.
func (e *env) buildMux(ctx context.Context, root string) error {
	e.muxBin = filepath.Join(e.tmp, "mux")
	logf("go build -o %s ./cmd/mux", e.muxBin)
	cmd := exec.CommandContext(ctx, "go", "build", "-o", e.muxBin, "./cmd/mux")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/mux: %v\n%s", err, out)
	}
	return nil
}

// muxConfig is the configuration the soak runs mux with: transaction
// pooling, pool size 20, SCRAM against the role's secret, metrics on.
func (e *env) muxConfig() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by bench/soak\n")
	fmt.Fprintf(&b, "listen = [\"127.0.0.1:%d\"]\n", e.muxPort)
	fmt.Fprintf(&b, "max_client_conn = %d\n", e.o.maxClientConn)
	fmt.Fprintf(&b, "auth_type = \"scram-sha-256\"\n")
	fmt.Fprintf(&b, "pool_mode = \"transaction\"\n")
	fmt.Fprintf(&b, "default_pool_size = %d\n", e.o.poolSize)
	fmt.Fprintf(&b, "http_listen = \"127.0.0.1:%d\"\n\n", e.httpPort)
	fmt.Fprintf(&b, "[databases.%s]\nhost = %q\nport = %d\ndbname = %q\nuser = %q\npassword = %q\n\n",
		soakDB, e.cluster.Host, e.cluster.Port, soakDB, soakUser, soakPassword)
	fmt.Fprintf(&b, "[users.%s]\npassword = %q\n", soakUser, e.secret)
	return b.String()
}

// startMux writes the configuration and starts mux as a child process. It
// inherits this process's open-file limit (raised by fdlimit.Raise).
func (e *env) startMux(ctx context.Context) error {
	var err error
	if e.muxPort, err = proc.FreePort(); err != nil {
		return err
	}
	if e.httpPort, err = proc.FreePort(); err != nil {
		return err
	}
	conf := filepath.Join(e.tmp, "mux.toml")
	if err := os.WriteFile(conf, []byte(e.muxConfig()), 0o600); err != nil {
		return err
	}
	e.muxLog = filepath.Join(e.tmp, "mux.log")
	logFile, err := os.Create(e.muxLog)
	if err != nil {
		return err
	}
	cmd := exec.Command(e.muxBin, "-config", conf)
	cmd.Dir = e.tmp
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("start mux: %v", err)
	}
	logFile.Close()
	e.mux = cmd
	e.muxDone = make(chan error, 1)
	go func() { e.muxDone <- cmd.Wait() }()

	deadline := time.Now().Add(20 * time.Second)
	for {
		if !e.muxRunning() {
			return fmt.Errorf("mux exited at start:\n%s", tailFile(e.muxLog, 2000))
		}
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		conn, err := pgconn.Connect(cctx, e.dsn())
		if err == nil {
			_, err = conn.Exec(cctx, "SELECT 1").ReadAll()
			conn.Close(cctx)
		}
		cancel()
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("mux does not accept clients: %v\n%s", err, tailFile(e.muxLog, 2000))
		}
		time.Sleep(100 * time.Millisecond)
	}
	e.muxLimit = readLimit(e.mux.Process.Pid, "Max open files")
	return nil
}

// muxRunning reports whether the mux process has not exited.
func (e *env) muxRunning() bool {
	select {
	case err := <-e.muxDone:
		e.muxDone <- err
		return false
	default:
		return true
	}
}

func (e *env) muxPID() int { return e.mux.Process.Pid }

// stopMux stops mux with SIGQUIT (no waiting for clients) and kills it if
// it has not exited after 10 seconds.
func (e *env) stopMux() {
	if e.mux == nil || !e.muxRunning() {
		return
	}
	_ = e.mux.Process.Signal(syscall.SIGQUIT)
	select {
	case <-e.muxDone:
	case <-time.After(10 * time.Second):
		_ = e.mux.Process.Kill()
		<-e.muxDone
	}
}

func (e *env) close() {
	e.stopMux()
	if e.cluster != nil {
		if err := e.cluster.Stop(); err != nil {
			logf("stopping Postgres: %v", err)
		}
	}
}

// dsn is the connection string of a client of mux.
func (e *env) dsn() string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=%s sslmode=disable",
		e.muxPort, soakUser, soakPassword, soakDB)
}

// readLimit returns a line's soft and hard values from /proc/<pid>/limits,
// e.g. "20000 (soft) / 20000 (hard)".
func readLimit(pid int, name string) string {
	f, err := os.Open(fmt.Sprintf("/proc/%d/limits", pid))
	if err != nil {
		return "unknown"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name) {
			continue
		}
		fs := strings.Fields(strings.TrimPrefix(line, name))
		if len(fs) >= 2 {
			return fmt.Sprintf("%s (soft) / %s (hard)", fs[0], fs[1])
		}
	}
	return "unknown"
}

// moduleRoot is the directory of the go.mod that the go command uses here.
func moduleRoot(ctx context.Context) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	if err != nil {
		return "", fmt.Errorf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		return "", errors.New("run the soak from within the mux module (go run ./bench/soak)")
	}
	return filepath.Dir(gomod), nil
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimRight(string(b), "\n")
}
