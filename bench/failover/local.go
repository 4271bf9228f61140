//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/pgtest"
	"github.com/muxpg/mux/proxy"
)

// local is a throwaway primary with a synchronous streaming replica and a
// mux in this process serving app (read-write) and app_ro (standby) over
// both: what the tool runs against when it is given no DSNs.
type local struct {
	primary, replica *pgtest.Cluster
	mux              *proxy.Proxy
	port             int
	served           sync.WaitGroup
}

// localConfig is mux's configuration for the pair. Hosts are checked every
// 200 ms, as a deployment that wants sub-second failover would; a killed
// server refuses connections at once, so the checks keep their default
// timeout (2 s), which a busy machine does not trip. The pool is large
// enough that every client of the tool gets a server.
const localConfig = `
listen = ["127.0.0.1:0"]
http_listen = ""
auth_type = "scram-sha-256"
server_login_retry = "100ms"
query_wait_timeout = "10s"
host_check_interval = "200ms"
host_retry_max = "1s"
default_pool_size = 60

[databases.app]
dbname = "postgres"
user = "postgres"
hosts = %[1]s
target_session_attrs = "read-write"

[databases.app_ro]
dbname = "postgres"
user = "postgres"
hosts = %[1]s
target_session_attrs = "standby"

[users.load]
password = "load"
`

// startLocal starts the pair and mux. On error nothing is left running.
func startLocal(ctx context.Context, log *zap.Logger) (l *local, err error) {
	l = &local{}
	if l.primary, l.replica, err = pgtest.StartPair(pgtest.Options{MaxConnections: 150}); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			l.stop()
		}
	}()
	if err := l.syncReplication(ctx); err != nil {
		return nil, err
	}
	return l, l.startMux(log)
}

// syncReplication makes the primary wait for the replica's flush before a
// COMMIT returns, so that a commit the tool saw succeed survives the
// primary's crash. It is set with ALTER SYSTEM, which pg_basebackup did
// not copy: the replica, once promoted, has no standby to wait for.
func (l *local) syncReplication(ctx context.Context) error {
	for _, sql := range []string{
		"ALTER SYSTEM SET synchronous_standby_names = '*'",
		"ALTER SYSTEM SET synchronous_commit = 'on'", // pgtest turns it off
		"SELECT pg_reload_conf()",
	} {
		if err := l.primary.Exec(ctx, sql); err != nil {
			return err
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		n, err := l.primary.QueryValue(ctx, "SELECT count(*) FROM pg_stat_replication WHERE sync_state = 'sync'")
		if err == nil && n == "1" {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the replica is not synchronous: %q, %v", n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (l *local) startMux(log *zap.Logger) error {
	hosts := fmt.Sprintf(`[{host = "%s", port = %d, role = "auto"}, {host = "%s", port = %d, role = "auto"}]`,
		l.primary.Host, l.primary.Port, l.replica.Host, l.replica.Port)
	cfg, err := config.Parse(fmt.Appendf(nil, localConfig, hosts))
	if err != nil {
		return err
	}
	snap, err := config.Resolve(cfg)
	if err != nil {
		return err
	}
	if l.mux, err = proxy.New(snap, log); err != nil {
		return err
	}
	lns, err := l.mux.Listen()
	if err != nil {
		return err
	}
	for _, ln := range lns {
		if a, ok := ln.Addr().(*net.TCPAddr); ok && l.port == 0 {
			l.port = a.Port
		}
		l.served.Go(func() { _ = l.mux.Serve(ln) })
	}
	if l.port == 0 {
		return errors.New("mux listens on no TCP port")
	}
	return nil
}

// dsn is a connection string to mux for database db.
func (l *local) dsn(db string) string {
	return fmt.Sprintf("host=127.0.0.1 port=%d dbname=%s user=load password=load sslmode=disable", l.port, db)
}

// loadConfig points the tool at mux, kills the primary with pg_ctl stop
// -m immediate, promotes the replica with pg_ctl promote (which waits
// until it takes writes) and counts on the promoted replica directly.
func (l *local) loadConfig() loadConfig {
	return loadConfig{
		AppDSN: l.dsn("app"), ReadDSN: l.dsn("app_ro"), VerifyDSN: l.replica.SuperConnString("postgres"),
		Kill: l.primary.StopImmediate, Promote: l.replica.Promote,
	}
}

// stop shuts mux down and removes both clusters.
func (l *local) stop() {
	if l.mux != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_ = l.mux.Shutdown(ctx)
		cancel()
		l.served.Wait()
	}
	_ = l.replica.Stop()
	_ = l.primary.Stop()
}
