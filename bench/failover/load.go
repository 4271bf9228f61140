//go:build unix

package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

// table is where the writers insert; run tells one run's rows from
// another's, so the table may be reused.
const table = "failover_load"

// opTimeout bounds one query. It is longer than mux's query_wait_timeout
// in the local setup, so a client waiting for a primary is answered by mux,
// not cut off by the tool.
const opTimeout = 15 * time.Second

// loadConfig is what one run does.
type loadConfig struct {
	AppDSN    string // the read-write entry (app)
	ReadDSN   string // the read-only entry (app_ro)
	VerifyDSN string // where the committed ids are counted; "" means AppDSN
	Clients   int    // writers + readers
	Readers   int    // of Clients
	Think     time.Duration
	Before    time.Duration // load before the kill
	After     time.Duration // load after the promotion
	// Kill and Promote end the primary and promote the replica. With both
	// nil there is no failover and the load runs for Before alone.
	Kill, Promote func() error
	Logf          func(format string, args ...any)
}

// clock holds the moments of the failover, as nanoseconds since start;
// 0 means not yet. Clients read them to file each outcome in its phase.
type clock struct {
	start                         time.Time
	killed, promoting, promotedAt atomic.Int64
}

func (c *clock) now() int64 { return int64(time.Since(c.start)) }

// phase is where a moment falls: 0 before the kill, 1 between the kill and
// the end of the promotion, 2 after it.
func (c *clock) phase(t int64) int {
	switch p := c.promotedAt.Load(); {
	case p != 0 && t >= p:
		return 2
	case c.killed.Load() != 0:
		return 1
	}
	return 0
}

// runLoad creates the table, runs the clients, plays the failover, stops
// the clients and counts the committed ids on the verify DSN.
func runLoad(ctx context.Context, cfg loadConfig) (*report, error) {
	run := fmt.Sprintf("%x", rand.Uint64())
	if err := prepare(ctx, cfg, run); err != nil {
		return nil, err
	}
	clk := &clock{start: time.Now()}
	stop := make(chan struct{})
	var ids atomic.Int64
	writers := make([]*writer, cfg.Clients-cfg.Readers)
	readers := make([]*reader, cfg.Readers)
	var wg, ready sync.WaitGroup
	ready.Add(cfg.Clients)
	for i := range writers {
		writers[i] = &writer{client: client{cfg: &cfg, run: run, clk: clk, ready: &ready}, ids: &ids}
		wg.Go(func() { writers[i].loop(stop) })
	}
	for i := range readers {
		readers[i] = &reader{client: client{cfg: &cfg, run: run, clk: clk, ready: &ready}}
		wg.Go(func() { readers[i].loop(stop) })
	}
	ferr := waitReady(ctx, &ready)
	if ferr == nil {
		cfg.Logf("%d clients connected", cfg.Clients)
		ferr = failover(ctx, cfg, clk)
	}
	close(stop)
	wg.Wait()
	if ferr != nil {
		return nil, ferr
	}
	r := collect(clk, writers, readers)
	if err := verify(ctx, cfg, run, writers, r); err != nil {
		return r, err
	}
	return r, nil
}

// waitReady waits until every client has connected once (or ctx ends), so
// that the load before the kill is load, not logins.
func waitReady(ctx context.Context, ready *sync.WaitGroup) error {
	done := make(chan struct{})
	go func() { ready.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// failover lets the load run, kills the primary, promotes the replica and
// lets the load run again, noting each moment.
func failover(ctx context.Context, cfg loadConfig, clk *clock) error {
	sleep := func(d time.Duration) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	if err := sleep(cfg.Before); err != nil || cfg.Kill == nil {
		return err
	}
	cfg.Logf("killing the primary")
	clk.killed.Store(clk.now())
	if err := cfg.Kill(); err != nil {
		return fmt.Errorf("kill: %w", err)
	}
	cfg.Logf("promoting the replica")
	clk.promoting.Store(clk.now())
	if err := cfg.Promote(); err != nil {
		return fmt.Errorf("promote: %w", err)
	}
	clk.promotedAt.Store(clk.now())
	cfg.Logf("promoted; load goes on for %v", cfg.After)
	return sleep(cfg.After)
}

// prepare creates the table through the primary entry and waits until the
// read-only entry sees it, so that readers never read a missing table.
func prepare(ctx context.Context, cfg loadConfig, run string) error {
	err := withConn(ctx, cfg.AppDSN, func(c *pgconn.PgConn) error {
		_, err := c.Exec(ctx, "CREATE TABLE IF NOT EXISTS "+table+
			" (run text, id bigint, at timestamptz DEFAULT now(), PRIMARY KEY (run, id))").ReadAll()
		return err
	})
	if err != nil {
		return fmt.Errorf("create %s: %w", table, err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := withConn(ctx, cfg.ReadDSN, func(c *pgconn.PgConn) error {
			res := c.ExecParams(ctx, "SELECT to_regclass($1) IS NOT NULL", [][]byte{[]byte(table)}, nil, nil, nil).Read()
			if res.Err == nil && string(res.Rows[0][0]) != "t" {
				return errors.New("not replayed yet")
			}
			return res.Err
		})
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s through the read-only entry: %w", table, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func withConn(ctx context.Context, dsn string, f func(*pgconn.PgConn) error) error {
	c, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		return err
	}
	defer c.Close(context.Background())
	return f(c)
}

// errorKey names an error for the report: its SQLSTATE, or "network" for
// one Postgres did not send.
func errorKey(err error) string {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code
	}
	return "network"
}

// client is what writers and readers share: a connection to mux, opened
// again when it is lost, and the tally of outcomes.
type client struct {
	cfg   *loadConfig
	run   string
	clk   *clock
	conn  *pgconn.PgConn
	ready *sync.WaitGroup // Done at the first connection, then nil

	ok     [3]int            // successes per phase
	errs   map[string]int    // errors by errorKey
	first  int64             // completion of the first success after the promotion began; 0: none
	lastEr map[string]string // one message per error key
}

// fail files err and drops the connection if it is gone.
func (c *client) fail(err error) {
	if c.errs == nil {
		c.errs, c.lastEr = map[string]int{}, map[string]string{}
	}
	k := errorKey(err)
	c.errs[k]++
	c.lastEr[k] = err.Error()
	if c.conn.IsClosed() {
		c.conn = nil
		return
	}
	if c.conn.TxStatus() != 'I' {
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		if _, err := c.conn.Exec(ctx, "ROLLBACK").ReadAll(); err != nil {
			c.conn.Close(ctx)
			c.conn = nil
		}
	}
}

// succeeded files a success that completed at t.
func (c *client) succeeded(t int64) {
	c.ok[c.clk.phase(t)]++
	if p := c.clk.promoting.Load(); p != 0 && t >= p && c.first == 0 {
		c.first = t
	}
}

// connect opens the connection if there is none; false means it failed
// (filed) and the caller should try again after a pause.
func (c *client) connect(dsn string) bool {
	if c.conn != nil {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	conn, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		if c.errs == nil {
			c.errs, c.lastEr = map[string]int{}, map[string]string{}
		}
		c.errs["connect"]++
		c.lastEr["connect"] = err.Error()
		return false
	}
	c.conn = conn
	if c.ready != nil {
		c.ready.Done()
		c.ready = nil
	}
	return true
}

// pause waits the think time (or 100 ms after an error); false when the
// run is over.
func pause(stop <-chan struct{}, d time.Duration) bool {
	if d <= 0 {
		select {
		case <-stop:
			return false
		default:
			return true
		}
	}
	select {
	case <-stop:
		return false
	case <-time.After(d):
		return true
	}
}

func (c *client) close() {
	if c.conn != nil {
		c.conn.Close(context.Background())
	}
}

// writer inserts rows with unique ids through the primary entry, one
// transaction each, and keeps the ids whose COMMIT succeeded.
type writer struct {
	client
	ids       *atomic.Int64
	committed []int64
}

func (w *writer) loop(stop <-chan struct{}) {
	defer w.close()
	for {
		wait := w.cfg.Think
		if !w.connect(w.cfg.AppDSN) {
			wait = 100 * time.Millisecond
		} else if id := w.ids.Add(1); w.write(id) {
			w.committed = append(w.committed, id)
		} else {
			wait = 100 * time.Millisecond
		}
		if !pause(stop, wait) {
			return
		}
	}
}

// write runs BEGIN, INSERT, COMMIT as three round trips, so that a server
// can die at any point of the transaction; true when COMMIT succeeded.
func (w *writer) write(id int64) bool {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	for _, sql := range []string{
		"BEGIN",
		fmt.Sprintf("INSERT INTO %s (run, id) VALUES ('%s', %d)", table, w.run, id),
		"COMMIT",
	} {
		res, err := w.conn.Exec(ctx, sql).ReadAll()
		if err == nil && sql == "COMMIT" && res[0].CommandTag.String() != "COMMIT" {
			err = fmt.Errorf("COMMIT answered %s", res[0].CommandTag)
		}
		if err != nil {
			w.fail(err)
			return false
		}
	}
	w.succeeded(w.clk.now())
	return true
}

// reader runs a read-only query through the read-only entry and notes
// whether a standby or a primary answered it.
type reader struct {
	client
	onPrimary [3]int // of ok, answered by a primary
}

func (r *reader) loop(stop <-chan struct{}) {
	defer r.close()
	for {
		wait := r.cfg.Think
		if !r.connect(r.cfg.ReadDSN) || !r.read() {
			wait = 100 * time.Millisecond
		}
		if !pause(stop, wait) {
			return
		}
	}
}

func (r *reader) read() bool {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	res := r.conn.ExecParams(ctx, "SELECT pg_is_in_recovery(), coalesce(max(id), 0) FROM "+table+" WHERE run = $1",
		[][]byte{[]byte(r.run)}, nil, nil, nil).Read()
	if res.Err != nil {
		r.fail(res.Err)
		return false
	}
	t := r.clk.now()
	r.succeeded(t)
	if string(res.Rows[0][0]) == "f" {
		r.onPrimary[r.clk.phase(t)]++
	}
	return true
}
