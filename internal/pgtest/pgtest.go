//go:build unix

// Package pgtest starts throwaway PostgreSQL clusters for tests: the
// clusters of internal/pgcluster, plus MustStart for TestMain.
//
// A cluster lives in a fresh temporary directory (not t.TempDir, since a
// cluster usually outlives a single test) and listens on 127.0.0.1 with a
// random free port and on a unix socket in a short private directory.
//
// When the current process runs as root, the server programs are run as the
// OS user "postgres" (PostgreSQL refuses to run as root); otherwise they run
// as the current user.
package pgtest

import (
	"errors"
	"fmt"
	"os"

	"github.com/muxpg/mux/internal/pgcluster"
)

// Options configures a cluster started by Start.
type Options = pgcluster.Options

// Cluster is a running throwaway PostgreSQL cluster.
type Cluster = pgcluster.Cluster

// ReplicationHBA is the pg_hba.conf line a primary needs so that
// StartReplica can copy it and stream from it.
const ReplicationHBA = pgcluster.ReplicationHBA

// Start creates and starts a new cluster.
func Start(opt Options) (*Cluster, error) { return pgcluster.Start(opt) }

// StartPair starts a primary (opt plus what replication needs) and one
// streaming replica of it. On error nothing is left running.
func StartPair(opt Options) (primary, replica *Cluster, err error) {
	return pgcluster.StartPair(opt)
}

// StartBackup takes a base backup with pg_basebackup from host:port into a
// new cluster and starts it (pgcluster.StartBackup).
func StartBackup(host string, port int, user string, env []string, args ...string) (*Cluster, error) {
	return pgcluster.StartBackup(host, port, user, env, args...)
}

// MustStart is meant for TestMain: it starts a cluster or prints the error
// and exits the process with status 1.
func MustStart(opt Options) *Cluster {
	c, err := Start(opt)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: %v\n", err)
		if !errors.Is(err, pgcluster.ErrNoServerPrograms) {
			fmt.Fprintf(os.Stderr, "pgtest: (if PostgreSQL is missing: %s)\n", pgcluster.InstallHint)
		}
		os.Exit(1)
	}
	return c
}
