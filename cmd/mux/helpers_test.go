package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/muxpg/mux/internal/pgtest"
)

// binDir holds the mux binary built once for every test that runs it.
var (
	buildOnce sync.Once
	binDir    string
	binPath   string
	buildErr  error
)

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// buildMux returns the path of a mux binary built from this package (once
// per test run).
func buildMux(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		if binDir, buildErr = os.MkdirTemp("", "muxbin-"); buildErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "mux")
		if out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// startMux writes toml to cfg and starts the mux binary bin on it, its
// standard error in logs; exited delivers the process's end. The process is
// killed when the test ends.
func startMux(t *testing.T, bin, cfg, toml string) (cmd *exec.Cmd, logs *safeBuffer, exited <-chan error) {
	t.Helper()
	if err := os.WriteFile(cfg, []byte(toml), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(bin, "-config", cfg)
	logs = &safeBuffer{}
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill() })
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	return cmd, logs, done
}

// startCluster starts a throwaway Postgres for one test and stops it when
// the test ends.
func startCluster(t *testing.T, opt pgtest.Options) *pgtest.Cluster {
	t.Helper()
	cluster, err := pgtest.Start(opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cluster.Stop() })
	return cluster
}

// daemonTOML is a configuration serving cluster's postgres database on
// port as user postgres, with JSON logs; top holds further top-level
// settings, one per line (http_listen is "" unless top sets it).
func daemonTOML(port int, cluster *pgtest.Cluster, top ...string) string {
	lines := append([]string{fmt.Sprintf("listen = [\"127.0.0.1:%d\"]", port), `log_format = "json"`}, top...)
	if !strings.Contains(strings.Join(top, "\n"), "http_listen") {
		lines = append(lines, `http_listen = ""`)
	}
	return strings.Join(lines, "\n") + fmt.Sprintf(`
[databases.postgres]
host = %q
port = %d
[users.postgres]
password = "secret"
`, cluster.Host, cluster.Port)
}
