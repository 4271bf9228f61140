//go:build unix

// Package pgcluster starts throwaway PostgreSQL clusters from the
// installed server programs: for the tests (through internal/pgtest) and
// for `mux demo`.
//
// A cluster lives in a fresh temporary directory (not t.TempDir, since a
// cluster usually outlives a single test) and listens on 127.0.0.1 with a
// random free port and on a unix socket in a short private directory.
//
// When the current process runs as root, the server programs are run as the
// OS user "postgres" (PostgreSQL refuses to run as root); otherwise they run
// as the current user.
package pgcluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// InstallHint names the Debian package holding the server programs.
const InstallHint = "install them with \"apt-get install postgresql\""

// BinDirEnv, when set, is the only directory searched for the server
// programs (tests of the message when they are missing use an empty one).
const BinDirEnv = "MUX_PG_BINDIR"

// ErrNoServerPrograms is wrapped by Start's error when initdb, pg_ctl or
// postgres cannot be found.
var ErrNoServerPrograms = errors.New("PostgreSQL server programs (initdb, pg_ctl, postgres) not found")

// Options configures a cluster started by Start.
type Options struct {
	MaxConnections int               // default 200
	HBA            []string          // extra pg_hba.conf lines placed BEFORE the defaults (first match wins)
	Settings       map[string]string // extra postgresql.conf settings
}

// Cluster is a running throwaway PostgreSQL cluster.
type Cluster struct {
	Host      string // "127.0.0.1"
	Port      int
	SocketDir string // unix socket directory (Postgres listens there too)
	DataDir   string
	BinDir    string
	SuperUser string // "postgres"

	tmpDir  string
	logFile string
	owner   *syscall.Credential // nil: run server programs as the current user

	mu      sync.Mutex
	stopped bool
}

// Start creates and starts a new cluster.
func Start(opt Options) (*Cluster, error) {
	if opt.MaxConnections <= 0 {
		opt.MaxConnections = 200
	}
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	owner, err := serverOwner()
	if err != nil {
		return nil, err
	}

	// Unix socket paths are limited to ~107 bytes, so keep the directory
	// short; as root also make sure the postgres user can reach it.
	base := os.TempDir()
	if owner != nil || len(base) > 40 {
		base = "/tmp"
	}
	tmp, err := os.MkdirTemp(base, "muxpg")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: create temp dir: %w", err)
	}
	c := &Cluster{
		Host:      "127.0.0.1",
		SocketDir: filepath.Join(tmp, "s"),
		DataDir:   filepath.Join(tmp, "data"),
		BinDir:    binDir,
		SuperUser: "postgres",
		tmpDir:    tmp,
		logFile:   filepath.Join(tmp, "log"),
		owner:     owner,
	}
	if err := c.setup(opt); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	if err := c.start(opt); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	c.watch()
	return c, nil
}

// watch starts a watchdog that stops the server once this process is gone:
// pg_ctl detaches the postmaster, so a test binary that panics or is killed
// before Stop would otherwise leave it running. The watchdog ends by itself
// when Stop has removed the data directory.
func (c *Cluster) watch() {
	script := fmt.Sprintf(`while [ -d /proc/%d ] && [ -d '%s' ]; do sleep 1; done
if [ -f '%s/postmaster.pid' ]; then '%s' -D '%s' -m immediate -w -t 60 stop; rm -rf '%s'; fi`,
		os.Getpid(), c.DataDir, c.DataDir, c.Bin("pg_ctl"), c.DataDir, c.tmpDir)
	cmd := exec.Command("/bin/sh", "-c", script)
	cmd.Dir = "/"
	cmd.Env = serverEnv()
	// Its own process group, so that a ^C to the test does not take it too.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if c.owner != nil {
		cmd.SysProcAttr.Credential = c.owner
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "pgcluster: no watchdog for %s (a crashed test may leave the server running): %v\n", c.DataDir, err)
		return
	}
	_ = cmd.Process.Release()
}

// setup creates the directories, runs initdb and writes the configuration.
func (c *Cluster) setup(opt Options) error {
	if err := os.Chmod(c.tmpDir, 0o755); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if err := os.Mkdir(c.DataDir, 0o700); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if err := os.Mkdir(c.SocketDir, 0o755); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	for _, p := range []string{c.tmpDir, c.DataDir, c.SocketDir} {
		if err := c.chown(p); err != nil {
			return err
		}
	}

	out, err := c.run(c.Bin("initdb"),
		"-D", c.DataDir, "-U", c.SuperUser, "--auth=trust",
		"-E", "UTF8", "--locale=C", "--no-sync")
	if err != nil {
		return fmt.Errorf("pgcluster: initdb: %v\n%s", err, tail(out, 2000))
	}

	var hba bytes.Buffer
	hba.WriteString("# written by pgcluster\n")
	for _, l := range opt.HBA {
		hba.WriteString(l)
		hba.WriteByte('\n')
	}
	hba.WriteString("local all all trust\n")
	hba.WriteString("host all postgres 127.0.0.1/32 trust\n")
	hba.WriteString("host all all 127.0.0.1/32 scram-sha-256\n")
	hba.WriteString("host all all ::1/128 scram-sha-256\n")
	if err := c.writeFile(filepath.Join(c.DataDir, "pg_hba.conf"), hba.Bytes()); err != nil {
		return err
	}

	// Settings go into postgresql.conf (later lines win), so that
	// opt.Settings can override the defaults below.
	var conf bytes.Buffer
	conf.WriteString("\n# added by pgcluster\n")
	defaults := [][2]string{
		{"listen_addresses", "127.0.0.1"},
		{"max_connections", strconv.Itoa(opt.MaxConnections)},
		{"fsync", "off"},
		{"synchronous_commit", "off"},
		{"full_page_writes", "off"},
	}
	for _, kv := range defaults {
		writeSetting(&conf, kv[0], kv[1])
	}
	keys := make([]string, 0, len(opt.Settings))
	for k := range opt.Settings {
		if !settingName.MatchString(k) {
			return fmt.Errorf("pgcluster: invalid setting name %q", k)
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		writeSetting(&conf, k, opt.Settings[k])
	}
	f, err := os.OpenFile(filepath.Join(c.DataDir, "postgresql.conf"), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	_, err = f.Write(conf.Bytes())
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("pgcluster: write postgresql.conf: %w", err)
	}
	return nil
}

var settingName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_.]*$`)

func writeSetting(b *bytes.Buffer, k, v string) {
	v = strings.ReplaceAll(v, `\`, `\\`)
	v = strings.ReplaceAll(v, `'`, `''`)
	fmt.Fprintf(b, "%s = '%s'\n", k, v)
}

// start picks a free port and starts the server, retrying a few times when
// the port was taken in the meantime.
func (c *Cluster) start(opt Options) error {
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			return fmt.Errorf("pgcluster: pick a port: %w", err)
		}
		logOff := fileSize(c.logFile)
		out, err := c.run(c.Bin("pg_ctl"),
			"-D", c.DataDir, "-w", "-t", "60", "-l", c.logFile,
			"-o", fmt.Sprintf("-p %d -k '%s'", port, c.SocketDir),
			"start")
		if err == nil {
			c.Port = port
			if err := c.waitReady(30 * time.Second); err != nil {
				c.kill()
				return fmt.Errorf("pgcluster: server started but does not accept connections: %v\nlog:\n%s",
					err, c.logTail(logOff))
			}
			return nil
		}
		logText := c.logTail(logOff)
		lastErr = fmt.Errorf("pgcluster: pg_ctl start: %v\n%s\nlog:\n%s", err, tail(out, 1000), logText)
		// The postmaster may still be running if pg_ctl timed out.
		c.kill()
		if !strings.Contains(logText, "could not bind") &&
			!strings.Contains(logText, "already in use") &&
			!strings.Contains(logText, "could not create listen socket") {
			break
		}
	}
	return lastErr
}

// waitReady connects until the server answers or the timeout expires.
func (c *Cluster) waitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		err := c.Exec(ctx, "SELECT 1")
		cancel()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill stops a possibly running postmaster immediately, ignoring errors.
func (c *Cluster) kill() {
	if _, err := os.Stat(filepath.Join(c.DataDir, "postmaster.pid")); err != nil {
		return
	}
	_, _ = c.run(c.Bin("pg_ctl"), "-D", c.DataDir, "-m", "immediate", "-w", "-t", "60", "stop")
}

// Stop stops the server immediately and removes the temporary directories.
// It is idempotent: calls after the first return nil.
func (c *Cluster) Stop() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return nil
	}
	c.stopped = true
	var err error
	if _, serr := os.Stat(filepath.Join(c.DataDir, "postmaster.pid")); serr == nil {
		out, rerr := c.run(c.Bin("pg_ctl"), "-D", c.DataDir, "-m", "immediate", "-w", "-t", "60", "stop")
		if rerr != nil {
			err = fmt.Errorf("pgcluster: pg_ctl stop: %v\n%s", rerr, tail(out, 1000))
		}
	}
	if rerr := os.RemoveAll(c.tmpDir); rerr != nil && err == nil {
		err = fmt.Errorf("pgcluster: remove temp dir: %w", rerr)
	}
	return err
}

// Restart restarts the server with pg_ctl restart -m mode ("smart", "fast" or
// "immediate") and waits until it accepts connections again.
func (c *Cluster) Restart(mode string) error {
	switch mode {
	case "smart", "fast", "immediate":
	default:
		return fmt.Errorf("pgcluster: invalid shutdown mode %q", mode)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("pgcluster: cluster is stopped")
	}
	logOff := fileSize(c.logFile)
	out, err := c.run(c.Bin("pg_ctl"),
		"-D", c.DataDir, "-w", "-t", "60", "-l", c.logFile, "-m", mode, "restart")
	if err != nil {
		return fmt.Errorf("pgcluster: pg_ctl restart: %v\n%s\nlog:\n%s", err, tail(out, 1000), c.logTail(logOff))
	}
	if err := c.waitReady(30 * time.Second); err != nil {
		return fmt.Errorf("pgcluster: server does not accept connections after restart: %v\nlog:\n%s",
			err, c.logTail(logOff))
	}
	return nil
}

// StopServer stops the server (pg_ctl stop -m fast) but keeps the cluster,
// so that StartServer can start it again: for tests of a Postgres that
// goes away and comes back.
func (c *Cluster) StopServer() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("pgcluster: cluster is stopped")
	}
	out, err := c.run(c.Bin("pg_ctl"), "-D", c.DataDir, "-m", "fast", "-w", "-t", "60", "stop")
	if err != nil {
		return fmt.Errorf("pgcluster: pg_ctl stop: %v\n%s", err, tail(out, 1000))
	}
	return nil
}

// StartServer starts a server stopped by StopServer again, on the same
// port, and waits until it accepts connections.
func (c *Cluster) StartServer() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("pgcluster: cluster is stopped")
	}
	logOff := fileSize(c.logFile)
	out, err := c.run(c.Bin("pg_ctl"),
		"-D", c.DataDir, "-w", "-t", "60", "-l", c.logFile,
		"-o", fmt.Sprintf("-p %d -k '%s'", c.Port, c.SocketDir),
		"start")
	if err != nil {
		return fmt.Errorf("pgcluster: pg_ctl start: %v\n%s\nlog:\n%s", err, tail(out, 1000), c.logTail(logOff))
	}
	if err := c.waitReady(30 * time.Second); err != nil {
		return fmt.Errorf("pgcluster: server does not accept connections after start: %v\nlog:\n%s",
			err, c.logTail(logOff))
	}
	return nil
}

// Bin returns the full path of a PostgreSQL program such as "pgbench" or
// "psql": the one in BinDir if present, else the one found in PATH. If
// neither exists it returns the path in BinDir.
func (c *Cluster) Bin(name string) string {
	p := filepath.Join(c.BinDir, name)
	if isExecutable(p) {
		return p
	}
	if lp, err := exec.LookPath(name); err == nil {
		if abs, err := filepath.Abs(lp); err == nil {
			return abs
		}
		return lp
	}
	return p
}

// Exec runs sql (which may contain several statements; the simple query
// protocol is used) as the superuser.
func (c *Cluster) Exec(ctx context.Context, sql string) error {
	conn, err := pgconn.Connect(ctx, c.SuperConnString("postgres"))
	if err != nil {
		return fmt.Errorf("pgcluster: connect: %w", err)
	}
	defer conn.Close(context.Background())
	results, err := conn.Exec(ctx, sql).ReadAll()
	if err != nil {
		return fmt.Errorf("pgcluster: exec: %w", err)
	}
	for _, r := range results {
		if r.Err != nil {
			return fmt.Errorf("pgcluster: exec: %w", r.Err)
		}
	}
	return nil
}

// SuperConnString returns a keyword/value connection string for the
// superuser connecting to database db over TCP (trust authentication).
func (c *Cluster) SuperConnString(db string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable",
		c.Host, c.Port, quoteDSN(c.SuperUser), quoteDSN(db))
}

// Env returns environment variables for running psql, pgbench and the like
// as the superuser against this cluster. Append them to os.Environ().
func (c *Cluster) Env() []string {
	return []string{
		"PGHOST=" + c.Host,
		"PGPORT=" + strconv.Itoa(c.Port),
		"PGUSER=" + c.SuperUser,
		"PGDATABASE=postgres",
		"PGSSLMODE=disable",
	}
}

// quoteDSN quotes a value for a keyword/value connection string if needed.
func quoteDSN(v string) string {
	if v != "" && !strings.ContainsAny(v, " \t\n\r\v\f'\\") {
		return v
	}
	v = strings.ReplaceAll(v, `\`, `\\`)
	v = strings.ReplaceAll(v, `'`, `\'`)
	return "'" + v + "'"
}

// run runs a server program as the cluster owner and returns its combined
// output.
func (c *Cluster) run(prog string, args ...string) ([]byte, error) {
	return c.runEnv(nil, prog, args...)
}

// runEnv is run with env added to the program's environment.
func (c *Cluster) runEnv(env []string, prog string, args ...string) ([]byte, error) {
	cmd := exec.Command(prog, args...)
	cmd.Dir = c.tmpDir
	cmd.Env = append(serverEnv(), env...)
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// A started postmaster must not keep our pipes open; it logs to a file,
	// but guard against hanging forever anyway.
	cmd.WaitDelay = 5 * time.Second
	if c.owner != nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: c.owner}
	}
	err := cmd.Run()
	return out.Bytes(), err
}

// serverEnv is the environment for server programs: ours without PG*
// variables that could redirect them, with a fixed locale and time zone.
func serverEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") ||
			strings.HasPrefix(kv, "LANG=") || strings.HasPrefix(kv, "TZ=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "LANG=C", "TZ=UTC")
}

func (c *Cluster) chown(path string) error {
	if c.owner == nil {
		return nil
	}
	if err := os.Chown(path, int(c.owner.Uid), int(c.owner.Gid)); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return nil
}

func (c *Cluster) writeFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	return c.chown(path)
}

// WriteDataFile writes a file into the data directory, mode 0600 and owned
// by the server's OS user, as PostgreSQL wants of an ssl_key_file. It
// returns the file's path.
func (c *Cluster) WriteDataFile(name string, data []byte) (string, error) {
	path := filepath.Join(c.DataDir, filepath.Base(name))
	return path, c.writeFile(path, data)
}

// logTail returns the end of the server log written after offset off.
func (c *Cluster) logTail(off int64) string {
	b, err := os.ReadFile(c.logFile)
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	if off > 0 && off <= int64(len(b)) {
		b = b[off:]
	}
	return tail(b, 4000)
}

func tail(b []byte, n int) string {
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return strings.TrimRight(string(b), "\n")
}

func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	if err := l.Close(); err != nil {
		return 0, err
	}
	return port, nil
}

// serverOwner returns the credential to run server programs with: nil when
// not root, else the OS user postgres.
func serverOwner() (*syscall.Credential, error) {
	if os.Geteuid() != 0 {
		return nil, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: running as root, but PostgreSQL refuses to run as root "+
			"and the OS user \"postgres\" to run it as was not found (%v); create that user "+
			"(\"apt-get install -y postgresql\" does) or run the tests as a non-root user", err)
	}
	uid, err := strconv.ParseUint(u.Uid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: bad uid %q for user postgres", u.Uid)
	}
	gid, err := strconv.ParseUint(u.Gid, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("pgcluster: bad gid %q for user postgres", u.Gid)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, nil
}

// FindBinDir returns the directory holding initdb, pg_ctl and postgres
// (and, from the same packages, psql and pgbench).
func FindBinDir() (string, error) { return findBinDir() }

// findBinDir locates the directory holding initdb, pg_ctl and postgres.
func findBinDir() (string, error) {
	var tried []string
	try := func(dir string) bool {
		if dir == "" {
			return false
		}
		tried = append(tried, dir)
		for _, n := range []string{"initdb", "pg_ctl", "postgres"} {
			if !isExecutable(filepath.Join(dir, n)) {
				return false
			}
		}
		return true
	}
	if dir, ok := os.LookupEnv(BinDirEnv); ok {
		if try(dir) {
			return dir, nil
		}
		return "", fmt.Errorf("%w in %s=%s; %s", ErrNoServerPrograms, BinDirEnv, dir, InstallHint)
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if r, err := filepath.EvalSymlinks(p); err == nil {
			if abs, err := filepath.Abs(r); err == nil && try(filepath.Dir(abs)) {
				return filepath.Dir(abs), nil
			}
		}
	}
	if p, err := exec.LookPath("pg_config"); err == nil {
		if out, err := exec.Command(p, "--bindir").Output(); err == nil {
			dir := strings.TrimSpace(string(out))
			if try(dir) {
				return dir, nil
			}
		}
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	sort.Slice(dirs, func(i, j int) bool {
		return versionKey(dirs[i]) > versionKey(dirs[j])
	})
	for _, d := range dirs {
		if try(d) {
			return d, nil
		}
	}
	where := ""
	if len(tried) > 0 {
		where = " (looked in PATH and " + strings.Join(tried, ", ") + ")"
	}
	return "", fmt.Errorf("%w%s; %s", ErrNoServerPrograms, where, InstallHint)
}

// versionKey extracts a sortable version number from /usr/lib/postgresql/V/bin.
func versionKey(binDir string) float64 {
	v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	if err != nil {
		return -1
	}
	return v
}

func isExecutable(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}
