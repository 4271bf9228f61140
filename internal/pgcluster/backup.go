//go:build unix

package pgcluster

import (
	"fmt"
	"os"
	"path/filepath"
)

// StartBackup takes a base backup with pg_basebackup from host:port (a
// server, or a pooler in front of one) as user, with args added ("-X",
// "stream", say) and env added to its environment (PGPASSWORD=…), into a
// new cluster directory, and starts that copy on a port of its own: a
// backup that starts is one that works. Without "-R" in args the copy is a
// primary of its own. On error nothing is left running.
func StartBackup(host string, port int, user string, env []string, args ...string) (*Cluster, error) {
	binDir, err := findBinDir()
	if err != nil {
		return nil, err
	}
	owner, err := serverOwner()
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("/tmp", "muxpg")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: create temp dir: %w", err)
	}
	r := &Cluster{
		Host: "127.0.0.1", SocketDir: filepath.Join(tmp, "s"), DataDir: filepath.Join(tmp, "data"),
		BinDir: binDir, SuperUser: "postgres", tmpDir: tmp,
		logFile: filepath.Join(tmp, "log"), owner: owner,
	}
	args = append([]string{"-h", host, "-p", fmt.Sprint(port), "-U", user, "-w"}, args...)
	if err := r.basebackupFrom(env, args...); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	if err := r.start(Options{}); err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	r.watch()
	return r, nil
}
