//go:build unix

package main

// mux demo: a throwaway Postgres from the installed server programs with
// mux in front of it, to try mux with one command. The cluster and its
// directory go when mux stops (Ctrl-C, SIGTERM) or fails to start.

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/pgcluster"
)

// Names of the demo's role and database, in Postgres and in mux.
const (
	demoUser = "demo"
	demoDB   = "demo"
)

// demoSetupTimeout bounds creating the demo role and database.
const demoSetupTimeout = 30 * time.Second

func demo(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("mux demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:6432", "accept clients on this `address` (host:port)")
	if err := fs.Parse(args); err != nil {
		return exitUsage
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "mux demo: unexpected argument %q (see mux demo -h)\n", fs.Arg(0))
		return exitUsage
	}
	// Ctrl-C while the cluster starts stops it rather than leaving it.
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	defer signal.Stop(sigs)

	if err := checkListen(*listen); err != nil {
		fmt.Fprintf(stderr, "mux demo: %v\n", err)
		return exitRuntime
	}
	httpAddr, err := freeLoopbackAddr()
	if err != nil {
		fmt.Fprintf(stderr, "mux demo: no free port for the status page: %v\n", err)
		return exitRuntime
	}
	cluster, err := startDemoCluster(sigs)
	if err != nil {
		fmt.Fprintf(stderr, "mux demo: %v\n", err)
		return exitRuntime
	}
	if cluster == nil { // interrupted
		return exitOK
	}
	defer func() {
		if err := cluster.Stop(); err != nil {
			fmt.Fprintf(stderr, "mux demo: %v\n", err)
		}
	}()
	return runDemo(cluster, *listen, httpAddr, stdout, stderr)
}

// runDemo creates the demo role and database in cluster and runs mux in
// front of it until a signal stops it.
func runDemo(cluster *pgcluster.Cluster, listen, httpAddr string, stdout, stderr io.Writer) int {
	password := randomPassword()
	if err := createDemoRole(cluster, password); err != nil {
		fmt.Fprintf(stderr, "mux demo: %v\n", err)
		return exitRuntime
	}
	dir := filepath.Dir(cluster.DataDir)
	path := filepath.Join(dir, "mux.toml")
	snap, err := demoConfig(path, demoTOML(listen, httpAddr, cluster, password))
	if err != nil {
		fmt.Fprintf(stderr, "mux demo: generated configuration: %v\n", err)
		return exitRuntime
	}
	log, level, err := newLogger(snap.Config, stderr)
	if err != nil {
		fmt.Fprintf(stderr, "mux demo: %v\n", err)
		return exitRuntime
	}
	defer func() { _ = log.Sync() }()
	d := &daemon{path: path, log: log, level: level}
	d.started = func() {
		fmt.Fprintf(stdout, "postgres://%s:%s@%s/%s\n", demoUser, password, listen, demoDB)
		fmt.Fprintf(stdout, "status page: http://%s/\n", httpAddr)
		fmt.Fprintf(stdout, "psql, pgbench and any driver take the URL above; mux's configuration is %s.\n", path)
		fmt.Fprintf(stdout, "Ctrl-C stops mux and Postgres and removes %s.\n", dir)
	}
	return d.run(snap)
}

// checkListen reports whether mux could listen on addr, naming -listen.
func checkListen(addr string) error {
	ln, err := net.Listen("tcp", addr)
	if err == nil {
		return ln.Close()
	}
	if errors.Is(err, syscall.EADDRINUSE) {
		return fmt.Errorf("-listen %s: the address is in use (by another mux or a PgBouncer?); choose another with -listen HOST:PORT", addr)
	}
	return fmt.Errorf("-listen %s: %v", addr, err)
}

// freeLoopbackAddr returns 127.0.0.1 with a port free right now.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// startDemoCluster starts the throwaway cluster; a signal meanwhile stops
// it again and returns (nil, nil).
func startDemoCluster(sigs <-chan os.Signal) (*pgcluster.Cluster, error) {
	type result struct {
		c   *pgcluster.Cluster
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := pgcluster.Start(pgcluster.Options{MaxConnections: 100})
		done <- result{c, err}
	}()
	select {
	case r := <-done:
		if errors.Is(r.err, pgcluster.ErrNoServerPrograms) {
			return nil, fmt.Errorf("%v", r.err)
		}
		return r.c, r.err
	case <-sigs:
		r := <-done
		if r.err == nil {
			_ = r.c.Stop()
		}
		return nil, nil
	}
}

// createDemoRole creates the demo role with password and its database.
func createDemoRole(c *pgcluster.Cluster, password string) error {
	ctx, cancel := context.WithTimeout(context.Background(), demoSetupTimeout)
	defer cancel()
	if err := c.Exec(ctx, fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s'", demoUser, password)); err != nil {
		return err
	}
	return c.Exec(ctx, fmt.Sprintf("CREATE DATABASE %s OWNER %s", demoDB, demoUser))
}

// randomPassword is 16 random bytes in hex: safe in a URL and in SQL.
func randomPassword() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b) // never fails (crypto/rand)
	return hex.EncodeToString(b)
}

// demoTOML is the demo's configuration: clients log in as the demo role
// with its password (SCRAM), transaction pooling, quiet connection logs.
func demoTOML(listen, httpAddr string, c *pgcluster.Cluster, password string) string {
	return fmt.Sprintf(`# written by mux demo
listen = [%q]
http_listen = %q
pool_mode = "transaction"
auth_type = "scram-sha-256"
admin_users = [%q]
shutdown_timeout = "5s"
log_connections = false
log_disconnections = false

[databases.%s]
host = %q
port = %d

[users.%s]
password = %q
`, listen, httpAddr, demoUser, demoDB, c.Host, c.Port, demoUser, password)
}

// demoConfig writes the configuration to path (for the curious) and
// parses it.
func demoConfig(path, text string) (*config.Snapshot, error) {
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		return nil, err
	}
	return config.Load(path)
}
