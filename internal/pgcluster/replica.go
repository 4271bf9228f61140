//go:build unix

package pgcluster

// A primary with a streaming replica, for tests of roles, routing and
// failover: the replica is a pg_basebackup -R copy of the primary's data
// directory, started on a port of its own.

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// ReplicationHBA is the pg_hba.conf line a primary needs so that
// StartReplica can copy it and stream from it.
const ReplicationHBA = "host replication postgres 127.0.0.1/32 trust"

// StartPair starts a primary (opt plus what replication needs) and one
// streaming replica of it. On error nothing is left running.
func StartPair(opt Options) (primary, replica *Cluster, err error) {
	opt.HBA = append([]string{ReplicationHBA}, opt.HBA...)
	settings := map[string]string{"wal_level": "replica", "max_wal_senders": "10", "hot_standby": "on"}
	for k, v := range opt.Settings {
		settings[k] = v
	}
	opt.Settings = settings
	primary, err = Start(opt)
	if err != nil {
		return nil, nil, err
	}
	replica, err = primary.StartReplica()
	if err != nil {
		_ = primary.Stop()
		return nil, nil, err
	}
	return primary, replica, nil
}

// StartReplica copies c with pg_basebackup -R (which writes
// primary_conninfo and standby.signal) into a new cluster directory and
// starts it as a hot standby streaming from c.
func (c *Cluster) StartReplica() (*Cluster, error) {
	base := filepath.Dir(c.tmpDir)
	tmp, err := os.MkdirTemp(base, "muxpg")
	if err != nil {
		return nil, fmt.Errorf("pgcluster: create temp dir: %w", err)
	}
	r := &Cluster{
		Host: c.Host, SocketDir: filepath.Join(tmp, "s"), DataDir: filepath.Join(tmp, "data"),
		BinDir: c.BinDir, SuperUser: c.SuperUser, tmpDir: tmp,
		logFile: filepath.Join(tmp, "log"), owner: c.owner,
	}
	if err := r.basebackup(c); err != nil {
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

// basebackup prepares r's directories and fills its data directory from c.
func (r *Cluster) basebackup(c *Cluster) error {
	return r.basebackupFrom(nil, "-h", c.Host, "-p", fmt.Sprint(c.Port),
		"-U", c.SuperUser, "-R", "-X", "stream", "--checkpoint=fast", "--no-sync")
}

// basebackupFrom prepares r's directories and fills its data directory
// with pg_basebackup args, env added to its environment.
func (r *Cluster) basebackupFrom(env []string, args ...string) error {
	if err := os.Chmod(r.tmpDir, 0o755); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	if err := os.Mkdir(r.SocketDir, 0o755); err != nil {
		return fmt.Errorf("pgcluster: %w", err)
	}
	for _, p := range []string{r.tmpDir, r.SocketDir} {
		if err := r.chown(p); err != nil {
			return err
		}
	}
	out, err := r.runEnv(env, r.Bin("pg_basebackup"), append([]string{"-D", r.DataDir}, args...)...)
	if err != nil {
		return fmt.Errorf("pgcluster: pg_basebackup: %v\n%s", err, tail(out, 2000))
	}
	return nil
}

// StopImmediate stops the server with pg_ctl stop -m immediate (a crash,
// as far as clients and replicas can tell) and keeps the cluster, so that
// StartServer can start it again.
func (c *Cluster) StopImmediate() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("pgcluster: cluster is stopped")
	}
	out, err := c.run(c.Bin("pg_ctl"), "-D", c.DataDir, "-m", "immediate", "-w", "-t", "60", "stop")
	if err != nil {
		return fmt.Errorf("pgcluster: pg_ctl stop -m immediate: %v\n%s", err, tail(out, 1000))
	}
	return nil
}

// Promote makes a standby a primary (pg_ctl promote, which waits until it
// accepts writes).
func (c *Cluster) Promote() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopped {
		return errors.New("pgcluster: cluster is stopped")
	}
	out, err := c.run(c.Bin("pg_ctl"), "-D", c.DataDir, "-w", "-t", "60", "promote")
	if err != nil {
		return fmt.Errorf("pgcluster: pg_ctl promote: %v\n%s", err, tail(out, 1000))
	}
	return nil
}

// InRecovery asks the server pg_is_in_recovery().
func (c *Cluster) InRecovery(ctx context.Context) (bool, error) {
	v, err := c.QueryValue(ctx, "SELECT pg_is_in_recovery()")
	return v == "t", err
}

// QueryValue runs sql as the superuser and returns the first column of its
// first row ("" if none).
func (c *Cluster) QueryValue(ctx context.Context, sql string) (string, error) {
	conn, err := pgconn.Connect(ctx, c.SuperConnString("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgcluster: connect: %w", err)
	}
	defer conn.Close(context.Background())
	res := conn.ExecParams(ctx, sql, nil, nil, nil, nil).Read()
	if res.Err != nil {
		return "", fmt.Errorf("pgcluster: %s: %w", sql, res.Err)
	}
	if len(res.Rows) == 0 || len(res.Rows[0]) == 0 {
		return "", nil
	}
	return string(res.Rows[0][0]), nil
}

// WaitReplay waits until the standby r has replayed everything the
// primary c had written when WaitReplay was called.
func (r *Cluster) WaitReplay(ctx context.Context, c *Cluster) error {
	lsn, err := c.QueryValue(ctx, "SELECT pg_current_wal_insert_lsn()")
	if err != nil {
		return err
	}
	for {
		ok, err := r.QueryValue(ctx, fmt.Sprintf("SELECT pg_last_wal_replay_lsn() >= '%s'::pg_lsn", strings.TrimSpace(lsn)))
		if err == nil && ok == "t" {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgcluster: standby did not replay up to %s: %w (last error: %v)", lsn, ctx.Err(), err)
		case <-time.After(20 * time.Millisecond):
		}
	}
}
