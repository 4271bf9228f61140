//go:build unix

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/muxpg/mux/bench/internal/proc"
	"github.com/muxpg/mux/internal/pgtest"
)

// The role and database the benchmark uses. Both proxies authenticate
// clients with SCRAM-SHA-256 against the role's stored secret and log in to
// Postgres as this role with its password.
const (
	benchUser     = "bench"
	benchPassword = "bench"
	benchDB       = "bench"
)

// env is the running Postgres plus what is needed to start the proxies.
type env struct {
	o            options
	tmp          string
	cluster      *pgtest.Cluster
	pgbench      string
	pgbouncerBin string
	muxBin       string
	idleBin      string
	scramSecret  string // rolpassword of benchUser
	postmaster   int    // pid
	owner        *syscall.Credential
	pgbouncerVer string
	// maxPrepared is whether PgBouncer knows max_prepared_statements
	// (1.21 and later).
	maxPrepared bool
}

// PgBouncer versions that added a setting the benchmark uses.
var (
	pgbouncerSoReuseport  = [2]int{1, 12}
	pgbouncerMaxPrepStmts = [2]int{1, 21}
)

func newEnv(ctx context.Context, o options, tmp, pgbouncerBin, muxBin, idleBin string) (*env, error) {
	e := &env{o: o, tmp: tmp, pgbouncerBin: pgbouncerBin, muxBin: muxBin, idleBin: idleBin}
	owner, err := proxyOwner()
	if err != nil {
		return nil, err
	}
	e.owner = owner
	var ver [2]int
	e.pgbouncerVer, ver, err = pgbouncerVersion(ctx, pgbouncerBin)
	if err != nil {
		return nil, err
	}
	e.maxPrepared = versionAtLeast(ver, pgbouncerMaxPrepStmts)
	if o.pgbouncerProcs > 1 && ver != [2]int{} && !versionAtLeast(ver, pgbouncerSoReuseport) {
		return nil, fmt.Errorf("PgBouncer x%d needs so_reuseport, which %s lacks (added in 1.12); pass -pgbouncer-procs 1",
			o.pgbouncerProcs, e.pgbouncerVer)
	}

	c, err := pgtest.Start(pgtest.Options{MaxConnections: o.maxConns})
	if err != nil {
		return nil, err
	}
	e.cluster = c
	e.pgbench = c.Bin("pgbench")
	if e.postmaster, err = postmasterPID(c.DataDir); err != nil {
		e.close()
		return nil, err
	}
	if err := e.setupDB(ctx); err != nil {
		e.close()
		return nil, err
	}
	return e, nil
}

func (e *env) close() {
	if e.cluster != nil {
		if err := e.cluster.Stop(); err != nil {
			logf("stopping Postgres: %v", err)
		}
	}
}

// setupDB creates the role and database and fills them with pgbench -i.
func (e *env) setupDB(ctx context.Context) error {
	for _, sql := range []string{
		fmt.Sprintf("SET password_encryption = 'scram-sha-256'; CREATE ROLE %s LOGIN PASSWORD '%s'", benchUser, benchPassword),
		fmt.Sprintf("CREATE DATABASE %s OWNER %s", benchDB, benchUser),
	} {
		if err := e.cluster.Exec(ctx, sql); err != nil {
			return err
		}
	}
	conn, err := pgconn.Connect(ctx, e.cluster.SuperConnString("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	rs, err := conn.Exec(ctx, "SELECT rolpassword FROM pg_authid WHERE rolname = '"+benchUser+"'").ReadAll()
	if err != nil {
		return err
	}
	if len(rs) != 1 || len(rs[0].Rows) != 1 || !strings.HasPrefix(string(rs[0].Rows[0][0]), "SCRAM-SHA-256$") {
		return errors.New("could not read the SCRAM secret of the bench role")
	}
	e.scramSecret = string(rs[0].Rows[0][0])

	logf("pgbench -i -s %d", e.o.scale)
	cmd := exec.CommandContext(ctx, e.pgbench, "-i", "-q", "-s", strconv.Itoa(e.o.scale),
		"-h", e.cluster.Host, "-p", strconv.Itoa(e.cluster.Port), "-U", benchUser, benchDB)
	cmd.Env = clientEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %v\n%s", err, out)
	}
	return nil
}

// postmasterPID reads the postmaster's process id from postmaster.pid.
func postmasterPID(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return 0, err
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	if err != nil {
		return 0, fmt.Errorf("postmaster.pid: %v", err)
	}
	return pid, nil
}

// clientEnv is the environment of pgbench: ours without PG* variables,
// plus the password.
func clientEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PG") {
			env = append(env, kv)
		}
	}
	return append(env, "PGPASSWORD="+benchPassword, "PGSSLMODE=disable")
}

// proxyOwner is the credential to run PgBouncer with: nil when we are not
// root, else the postgres OS user (PgBouncer refuses to run as root).
func proxyOwner() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("running as root, but the OS user postgres to run PgBouncer as was not found: %v", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err1 != nil || err2 != nil {
		return nil, fmt.Errorf("bad uid/gid for user postgres")
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// ensurePgBouncer returns the PgBouncer binary, installing Debian's package
// if there is none.
func ensurePgBouncer(ctx context.Context, flagPath string) (string, error) {
	if flagPath != "" {
		return flagPath, nil
	}
	find := func() string {
		if p, err := exec.LookPath("pgbouncer"); err == nil {
			return p
		}
		if fi, err := os.Stat("/usr/sbin/pgbouncer"); err == nil && !fi.IsDir() {
			return "/usr/sbin/pgbouncer"
		}
		return ""
	}
	if p := find(); p != "" {
		return p, nil
	}
	if os.Geteuid() != 0 {
		return "", errors.New("PgBouncer is not installed; install it (e.g. sudo apt-get install -y pgbouncer) or pass -pgbouncer")
	}
	logf("PgBouncer not found: apt-get install -y pgbouncer")
	install := func() error {
		cmd := exec.CommandContext(ctx, "apt-get", "install", "-y", "--no-install-recommends", "pgbouncer")
		cmd.Env = append(os.Environ(), "DEBIAN_FRONTEND=noninteractive")
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("apt-get install pgbouncer: %v\n%s", err, tailString(string(out), 2000))
		}
		return nil
	}
	if err := install(); err != nil {
		logf("%v; running apt-get update and trying again", err)
		upd := exec.CommandContext(ctx, "apt-get", "update")
		if out, err := upd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("apt-get update: %v\n%s", err, tailString(string(out), 2000))
		}
		if err := install(); err != nil {
			return "", err
		}
	}
	// The package may start a PgBouncer service on 6432; it does not
	// matter, the benchmark uses its own ports and processes.
	if p := find(); p != "" {
		return p, nil
	}
	return "", errors.New("pgbouncer still not found after apt-get install")
}

// pgbouncerVersion returns PgBouncer's version line and its major and
// minor version, zero if the line does not say.
func pgbouncerVersion(ctx context.Context, bin string) (string, [2]int, error) {
	out, err := exec.CommandContext(ctx, bin, "--version").Output()
	if err != nil {
		return "", [2]int{}, fmt.Errorf("%s --version: %v", bin, err)
	}
	line := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	var v [2]int
	if _, err := fmt.Sscanf(line, "PgBouncer %d.%d", &v[0], &v[1]); err != nil {
		return line, [2]int{}, nil
	}
	return line, v, nil
}

func versionAtLeast(v, min [2]int) bool {
	return v[0] > min[0] || (v[0] == min[0] && v[1] >= min[1])
}

func goBuild(ctx context.Context, root, out, pkg string) error {
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, pkg)
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", pkg, err, b)
	}
	return nil
}

// proxy is a running PgBouncer, N PgBouncers sharing a port, or mux.
type proxy struct {
	name  string // target key
	port  int
	procs []*proxyProc
}

// proxyProc is one process of a proxy.
type proxyProc struct {
	cmd     *exec.Cmd
	logPath string
	stopSig os.Signal  // PgBouncer: SIGTERM, immediate shutdown; mux: SIGQUIT, stop without waiting for clients
	done    chan error // cmd.Wait's result, put back by whoever reads it
}

// pid is the first process's id: the only one but for PgBouncer xN.
func (p *proxy) pid() int { return p.procs[0].cmd.Process.Pid }

// cpus returns each process's CPU time so far.
func (p *proxy) cpus() ([]time.Duration, error) {
	out := make([]time.Duration, len(p.procs))
	for i, pp := range p.procs {
		d, err := proc.ReadCPU(pp.cmd.Process.Pid)
		if err != nil {
			return nil, err
		}
		out[i] = d
	}
	return out, nil
}

// cpu returns the CPU time of all the proxy's processes together.
func (p *proxy) cpu() (time.Duration, error) {
	ds, err := p.cpus()
	var sum time.Duration
	for _, d := range ds {
		sum += d
	}
	return sum, err
}

// peakRSS returns the sum of the processes' peak RSS (VmHWM), in bytes.
func (p *proxy) peakRSS() (int64, error) {
	var sum int64
	for _, pp := range p.procs {
		m, err := proc.ReadMem(pp.cmd.Process.Pid)
		if err != nil {
			return 0, err
		}
		sum += m.Peak
	}
	return sum, nil
}

// logTail is the end of each process's log, at most n bytes of each.
func (p *proxy) logTail(n int) string {
	var parts []string
	for _, pp := range p.procs {
		if t := tailFile(pp.logPath, n); t != "" {
			if len(p.procs) > 1 {
				t = filepath.Base(pp.logPath) + ":\n" + t
			}
			parts = append(parts, t)
		}
	}
	return strings.Join(parts, "\n")
}

// start starts one process of p, logging to logPath.
func (p *proxy) start(cmd *exec.Cmd, dir, logPath string, stopSig os.Signal) error {
	cmd.Dir = dir
	logFile, err := os.Create(logPath)
	if err != nil {
		return err
	}
	cmd.Stdout = logFile
	cmd.Stderr = logFile
	err = cmd.Start()
	logFile.Close()
	if err != nil {
		return fmt.Errorf("start %s: %v", p.name, err)
	}
	pp := &proxyProc{cmd: cmd, logPath: logPath, stopSig: stopSig, done: make(chan error, 1)}
	go func() { pp.done <- cmd.Wait() }()
	p.procs = append(p.procs, pp)
	return nil
}

// startProxy starts a fresh proxy for t in its own directory and waits
// until it accepts a logged-in client (and, for PgBouncer xN, until all
// its processes listen).
func (e *env) startProxy(ctx context.Context, t target, n int) (*proxy, error) {
	dir := filepath.Join(e.tmp, fmt.Sprintf("%s-%d", t.key, n))
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	port, err := proc.FreePort()
	if err != nil {
		return nil, err
	}
	p := &proxy{name: t.key, port: port}
	switch t.kind {
	case kindPgBouncer:
		users := filepath.Join(dir, "userlist.txt")
		if err := e.writeOwned(users, []byte(fmt.Sprintf("%q %q\n", benchUser, e.scramSecret))); err != nil {
			return nil, err
		}
		if err := e.chown(dir); err != nil {
			return nil, err
		}
		for i, pool := range splitPool(poolSize, t.procs) {
			name := "pgbouncer"
			if t.procs > 1 {
				name = fmt.Sprintf("pgbouncer-%d", i+1)
			}
			ini := filepath.Join(dir, name+".ini")
			if err := e.writeOwned(ini, []byte(e.pgbouncerIni(port, users, pool, t.procs > 1))); err != nil {
				p.stop()
				return nil, err
			}
			cmd := exec.Command(e.pgbouncerBin, ini)
			if e.owner != nil {
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: e.owner}
			}
			if err := p.start(cmd, dir, filepath.Join(dir, name+".log"), syscall.SIGTERM); err != nil {
				p.stop()
				return nil, err
			}
		}
	case kindMux:
		conf := filepath.Join(dir, "mux.toml")
		if err := os.WriteFile(conf, []byte(e.muxConfig(port, t.workers, t.workersKey)), 0o600); err != nil {
			return nil, err
		}
		if err := p.start(exec.Command(e.muxBin, "-config", conf), dir, filepath.Join(dir, "mux.log"), syscall.SIGQUIT); err != nil {
			return nil, err
		}
	default:
		return nil, fmt.Errorf("%s is not a proxy", t.key)
	}

	if err := p.waitReady(ctx, 15*time.Second); err != nil {
		p.stop()
		return nil, fmt.Errorf("%s does not accept clients: %v\n%s", t.key, err, p.logTail(2000))
	}
	return p, nil
}

// splitPool splits a pool of size connections between n processes as
// evenly as it goes: 20 between 2 is 10 and 10, between 3 is 7, 7 and 6.
func splitPool(size, n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = size / n
		if i < size%n {
			out[i]++
		}
	}
	return out
}

// dsn is a connection string for a client of the benchmark.
func dsn(port int) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=%s sslmode=disable",
		port, benchUser, benchPassword, benchDB)
}

// waitReady waits until every process listens on the port and a client
// logs in and runs SELECT 1. With so_reuseport the kernel hands each
// connection to one of the listeners, so a log-in alone does not show
// that all of them are up: the listeners are counted in /proc/net/tcp.
func (p *proxy) waitReady(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		for i, pp := range p.procs {
			select {
			case err := <-pp.done:
				pp.done <- err
				if len(p.procs) > 1 {
					return fmt.Errorf("process %d exited: %v", i+1, err)
				}
				return fmt.Errorf("exited: %v", err)
			default:
			}
		}
		err := p.listening()
		if err == nil {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			var conn *pgconn.PgConn
			conn, err = pgconn.Connect(cctx, dsn(p.port))
			if err == nil {
				_, err = conn.Exec(cctx, "SELECT 1").ReadAll()
				conn.Close(cctx)
			}
			cancel()
		}
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// listening checks that as many sockets listen on p's port as p has
// processes; for one process, the log-in that follows is check enough.
func (p *proxy) listening() error {
	if len(p.procs) < 2 {
		return nil
	}
	n, err := proc.TCPListeners(p.port)
	if err != nil {
		return err
	}
	if n != len(p.procs) {
		return fmt.Errorf("%d of %d processes listen on port %d", n, len(p.procs), p.port)
	}
	return nil
}

// stop ends every process at once with its stop signal and kills those
// that have not exited after 10 seconds.
func (p *proxy) stop() {
	for _, pp := range p.procs {
		_ = pp.cmd.Process.Signal(pp.stopSig)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, pp := range p.procs {
		select {
		case err := <-pp.done:
			pp.done <- err
		case <-time.After(time.Until(deadline)):
			_ = pp.cmd.Process.Kill()
			pp.done <- <-pp.done
		}
	}
}

// pgbouncerIni is the configuration of one PgBouncer process with a pool
// of pool server connections; reuseport lets several share the port.
func (e *env) pgbouncerIni(port int, userlist string, pool int, reuseport bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "; written by bench\n[databases]\n")
	fmt.Fprintf(&b, "%s = host=127.0.0.1 port=%d dbname=%s user=%s password=%s\n",
		benchDB, e.cluster.Port, benchDB, benchUser, benchPassword)
	fmt.Fprintf(&b, "\n[pgbouncer]\n")
	fmt.Fprintf(&b, "listen_addr = 127.0.0.1\nlisten_port = %d\n", port)
	fmt.Fprintf(&b, "unix_socket_dir =\n")
	fmt.Fprintf(&b, "auth_type = scram-sha-256\nauth_file = %s\n", userlist)
	fmt.Fprintf(&b, "pool_mode = transaction\ndefault_pool_size = %d\nmax_client_conn = 11000\n", pool)
	if reuseport {
		fmt.Fprintf(&b, "so_reuseport = 1\n")
	}
	if e.maxPrepared {
		fmt.Fprintf(&b, "max_prepared_statements = 200\n")
	} else {
		fmt.Fprintf(&b, "; max_prepared_statements = 200 omitted: %s does not know it (added in 1.21)\n", e.pgbouncerVer)
	}
	return b.String()
}

// muxConfig is mux's configuration; with key, the workers key is written.
func (e *env) muxConfig(port, workers int, key bool) string {
	var b strings.Builder
	fmt.Fprintf(&b, "# written by bench: shipped defaults plus what equivalence with PgBouncer needs\n")
	fmt.Fprintf(&b, "listen = [\"127.0.0.1:%d\"]\n", port)
	fmt.Fprintf(&b, "max_client_conn = 11000\n")
	fmt.Fprintf(&b, "auth_type = \"scram-sha-256\"\n")
	fmt.Fprintf(&b, "pool_mode = \"transaction\"\n")
	fmt.Fprintf(&b, "default_pool_size = %d\n", poolSize)
	if key {
		fmt.Fprintf(&b, "workers = %d\n", workers)
	}
	fmt.Fprintf(&b, "http_listen = \"\"\n\n")
	fmt.Fprintf(&b, "[databases.%s]\nhost = \"127.0.0.1\"\nport = %d\ndbname = %q\nuser = %q\npassword = %q\n\n",
		benchDB, e.cluster.Port, benchDB, benchUser, benchPassword)
	fmt.Fprintf(&b, "[users.%s]\npassword = %q\n", benchUser, e.scramSecret)
	return b.String()
}

// checkMuxWorkers asks mux (-check-config) whether it takes each workers
// value, so that a build without the key fails here and not in every run.
func (e *env) checkMuxWorkers(ctx context.Context, workers []int) error {
	for _, w := range workers {
		conf := filepath.Join(e.tmp, fmt.Sprintf("check-workers-%d.toml", w))
		if err := os.WriteFile(conf, []byte(e.muxConfig(1, w, true)), 0o600); err != nil {
			return err
		}
		out, err := exec.CommandContext(ctx, e.muxBin, "-check-config", conf).CombinedOutput()
		if err != nil {
			return fmt.Errorf("-mux-workers %d: this mux does not take `workers = %d`: %s", w, w, strings.TrimSpace(string(out)))
		}
	}
	return nil
}

// writeOwned writes a file readable only by the user the proxy runs as.
func (e *env) writeOwned(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return err
	}
	return e.chown(path)
}

func (e *env) chown(path string) error {
	if e.owner == nil {
		return nil
	}
	return os.Chown(path, int(e.owner.Uid), int(e.owner.Gid))
}

func tailString(s string, n int) string {
	if len(s) > n {
		s = s[len(s)-n:]
	}
	return strings.TrimRight(s, "\n")
}

func tailFile(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return ""
	}
	return tailString(string(bytes.TrimSpace(b)), n)
}
