//go:build unix

package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/muxpg/mux/internal/pgcluster"
)

// demoStartDeadline is how long the test waits for the URL: the command
// promises 5 s, but initdb on a loaded test machine may take longer; the
// time taken is logged.
const demoStartDeadline = 60 * time.Second

var (
	demoURLLine    = regexp.MustCompile(`^postgres://\S+$`)
	demoDirLine    = regexp.MustCompile(`removes (/\S+)\.$`)
	demoStatusLine = regexp.MustCompile(`^status page: (http://127\.0\.0\.1:\d+/)$`)
)

// demoRun is a running `mux demo`.
type demoRun struct {
	cmd    *exec.Cmd
	logs   *safeBuffer
	exited chan error
	url    string
	status string // the status page's address
	dir    string // the cluster's directory
}

// startDemo runs the built binary's demo on listen and reads its URL and
// cluster directory from stdout.
func startDemo(t *testing.T, listen string) *demoRun {
	t.Helper()
	d := &demoRun{cmd: exec.Command(buildMux(t), "demo", "-listen", listen), logs: &safeBuffer{}, exited: make(chan error, 1)}
	d.cmd.Stderr = d.logs
	stdout, err := d.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 16)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
		d.exited <- d.cmd.Wait()
	}()
	t.Cleanup(func() {
		_ = d.cmd.Process.Kill()
		if d.dir != "" {
			os.RemoveAll(d.dir)
		}
	})
	timeout := time.After(demoStartDeadline)
	for d.url == "" || d.dir == "" {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("demo ended before printing its URL and directory\n%s", d.logs.String())
			}
			if demoURLLine.MatchString(l) {
				d.url = l
				t.Logf("URL after %v: %s", time.Since(began).Round(time.Millisecond), l)
			}
			if m := demoStatusLine.FindStringSubmatch(l); m != nil {
				d.status = m[1]
			}
			if m := demoDirLine.FindStringSubmatch(l); m != nil {
				d.dir = m[1]
			}
		case <-timeout:
			t.Fatalf("no URL within %v\n%s", demoStartDeadline, d.logs.String())
		}
	}
	go func() { // keep reading so the process never blocks on stdout
		for range lines {
		}
	}()
	return d
}

// The demo's URL works for pgx, psql and pgbench (init and a short run,
// in transaction mode); SIGINT stops mux and Postgres and removes the
// cluster's directory, leaving no process behind.
func TestDemo(t *testing.T) {
	d := startDemo(t, fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, d.url)
	if err != nil {
		t.Fatalf("pgx: %v\n%s", err, d.logs.String())
	}
	var user string
	if err := conn.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil || user != demoUser {
		t.Fatalf("pgx: current_user %q, %v", user, err)
	}
	conn.Close(ctx)
	checkMetrics(t, d.status)
	binDir, err := pgcluster.FindBinDir()
	if err != nil {
		t.Fatal(err)
	}
	runClient(t, filepath.Join(binDir, "psql"), d.url, "-X", "-A", "-t", "-c", "SELECT 40 + 2")
	runClient(t, filepath.Join(binDir, "pgbench"), "-i", "-s", "1", "-q", d.url)
	runClient(t, filepath.Join(binDir, "pgbench"), "-c", "4", "-T", "2", d.url)

	if err := d.cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-d.exited:
		if err != nil {
			t.Fatalf("demo exited with %v\n%s", err, d.logs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("demo still running 30s after SIGINT\n%s", d.logs.String())
	}
	if _, err := os.Stat(d.dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("cluster directory %s still there after SIGINT (%v)", d.dir, err)
	}
	waitNoProcessMentions(t, d.dir)
}

// runClient runs a Postgres client program and fails the test if it fails.
func runClient(t *testing.T, prog string, args ...string) {
	t.Helper()
	cmd := exec.Command(prog, args...)
	cmd.Env = append(os.Environ(), "PGCONNECT_TIMEOUT=10")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(prog), strings.Join(args, " "), err, out)
	}
}

// waitNoProcessMentions waits a little for every process whose command
// line mentions dir (the postmaster, its children, pgcluster's watchdog)
// to be gone.
func waitNoProcessMentions(t *testing.T, dir string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		procs := processesMentioning(dir)
		if len(procs) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("processes still running from %s: %v", dir, procs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func processesMentioning(dir string) []string {
	paths, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	var found []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil || !strings.Contains(string(b), dir) {
			continue
		}
		found = append(found, filepath.Base(filepath.Dir(p))+": "+strings.ReplaceAll(string(b), "\x00", " "))
	}
	return found
}

// A busy -listen address is one clear error naming the flag, and nothing
// is started.
func TestDemoBusyPort(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	out, code := runDemoToEnd(t, nil, "-listen", ln.Addr().String())
	if code != exitRuntime || !strings.Contains(out, "-listen "+ln.Addr().String()) || !strings.Contains(out, "in use") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
	if n := strings.Count(strings.TrimSpace(out), "\n"); n != 0 {
		t.Fatalf("want one line, got %d:\n%s", n+1, out)
	}
}

// Without the server programs the demo says in one line which package to
// install.
func TestDemoNoServerPrograms(t *testing.T) {
	env := []string{pgcluster.BinDirEnv + "=" + t.TempDir()}
	out, code := runDemoToEnd(t, env, "-listen", fmt.Sprintf("127.0.0.1:%d", freePort(t)))
	if code != exitRuntime || !strings.Contains(out, "apt-get install postgresql") {
		t.Fatalf("exit %d, output:\n%s", code, out)
	}
	if n := strings.Count(strings.TrimSpace(out), "\n"); n != 0 {
		t.Fatalf("want one line, got %d:\n%s", n+1, out)
	}
}

// runDemoToEnd runs the demo expecting it to stop by itself, and returns
// its output and exit status.
func runDemoToEnd(t *testing.T, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(buildMux(t), append([]string{"demo"}, args...)...)
	cmd.Env = append(os.Environ(), env...)
	var out safeBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("demo still running after 30s\n%s", out.String())
	}
	return out.String(), cmd.ProcessState.ExitCode()
}

// checkMetrics checks that the HTTP endpoint at base (the status page's
// address) answers: its /metrics counts the demo's client.
func checkMetrics(t *testing.T, base string) {
	t.Helper()
	if base == "" {
		t.Fatal("no status page address printed")
	}
	resp, err := http.Get(base + "metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), `database="demo"`) {
		t.Fatalf("%smetrics: %s\n%.2000s", base, resp.Status, body)
	}
}
