//go:build unix

package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// kind is what a client does.
type kind int

const (
	kPrepared  kind = iota // pgx's default mode: named prepared statements from its cache
	kDescribe              // pgx describe-exec: unnamed statement, Parse/Describe then Bind/Execute
	kSimple                // pgx simple protocol
	kPrepChurn             // prepared statements, 300 query texts through a 16-entry cache
	kListen                // LISTEN on its own channel, NOTIFY itself, wait for the notification
	kReconnect             // connects, runs one transaction, disconnects; a quarter drop the socket mid-transaction
	kSet                   // SET / set_config / SET LOCAL, checked on its next transaction
	nKinds
)

var kindNames = [nKinds]string{
	kPrepared:  "prepared",
	kDescribe:  "describe-exec",
	kSimple:    "simple",
	kPrepChurn: "prepared-churn",
	kListen:    "listen-notify",
	kReconnect: "reconnect",
	kSet:       "set",
}

// mix is the share of clients, in percent, of each kind. Client i has the
// kind that i mod 100 falls into.
var mix = []struct {
	k   kind
	pct int
}{
	{kPrepared, 42},
	{kDescribe, 10},
	{kSimple, 30},
	{kPrepChurn, 5},
	{kListen, 5},
	{kReconnect, 3},
	{kSet, 5},
}

func kindOf(i int) kind {
	p := i % 100
	for _, m := range mix {
		if p < m.pct {
			return m.k
		}
		p -= m.pct
	}
	return kPrepared
}

// kindCounts is how many of n clients have each kind.
func kindCounts(n int) [nKinds]int {
	var c [nKinds]int
	for i := 0; i < n; i++ {
		c[kindOf(i)]++
	}
	return c
}

const (
	opTimeout     = 30 * time.Second // one transaction, login or notification round trip
	notifyTimeout = 10 * time.Second // a listener's own notification must arrive within this
	retryWait     = time.Second      // after a failed login
	maxErrKeys    = 50               // distinct error messages kept
)

// counters are what the clients report, read by the sampler.
type counters struct {
	tx            [nKinds]atomic.Int64 // completed units of work
	errs          [nKinds]atomic.Int64
	logins        atomic.Int64 // successful logins, first ones and later ones
	open          atomic.Int64 // client connections open now
	ready         atomic.Int64 // clients that finished their first login
	notifications atomic.Int64

	mu     sync.Mutex
	errMsg map[string]int64
}

func (c *counters) totals() (tx, errs int64) {
	for k := range nKinds {
		tx += c.tx[k].Load()
		errs += c.errs[k].Load()
	}
	return tx, errs
}

func (c *counters) fail(k kind, err error) {
	c.errs[k].Add(1)
	msg := err.Error()
	if len(msg) > 160 {
		msg = msg[:160] + "…"
	}
	key := kindNames[k] + ": " + msg
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.errMsg == nil {
		c.errMsg = map[string]int64{}
	}
	if _, ok := c.errMsg[key]; !ok && len(c.errMsg) >= maxErrKeys {
		key = "(other messages)"
	}
	c.errMsg[key]++
}

// errorList is the distinct error messages, most frequent first.
func (c *counters) errorList() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	keys := make([]string, 0, len(c.errMsg))
	for k := range c.errMsg {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if c.errMsg[keys[i]] != c.errMsg[keys[j]] {
			return c.errMsg[keys[i]] > c.errMsg[keys[j]]
		}
		return keys[i] < keys[j]
	})
	out := make([]string, len(keys))
	for i, k := range keys {
		out[i] = fmt.Sprintf("%d × %s", c.errMsg[k], k)
	}
	return out
}

// workload runs the clients.
type workload struct {
	o       options
	dsn     string
	aids    int // rows in pgbench_accounts
	c       *counters
	stop    chan struct{}
	wg      sync.WaitGroup
	connSem chan struct{} // bounds logins in flight
}

func newWorkload(o options, dsn string) *workload {
	return &workload{
		o:       o,
		dsn:     dsn,
		aids:    o.scale * 100000,
		c:       &counters{},
		stop:    make(chan struct{}),
		connSem: make(chan struct{}, o.connectConc),
	}
}

// start launches every client; each logs in (at most connectConc at once)
// and then works until stopAll.
func (w *workload) start() {
	for i := 0; i < w.o.clients; i++ {
		w.wg.Add(1)
		go w.client(i)
	}
}

// stopAll tells the clients to finish their current transaction and
// disconnect, and waits up to timeout for them.
func (w *workload) stopAll(timeout time.Duration) bool {
	close(w.stop)
	done := make(chan struct{})
	go func() { w.wg.Wait(); close(done) }()
	select {
	case <-done:
		return true
	case <-time.After(timeout):
		return false
	}
}

func (w *workload) stopped() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

// slowThinker is how much longer every fifth client thinks: long enough
// (with the default mean, 1.4 s to 4.2 s) for mux to park it between its
// transactions, so that parking and waking are soaked too.
const slowThinker = 4

// think waits a think time, uniform in [0.5, 1.5] of the mean (times
// slowThinker for every fifth client, i%5 == 0); false if the clients were
// stopped meanwhile.
func (w *workload) think(rng *rand.Rand, i int) bool {
	d := time.Duration(float64(w.o.think) * (0.5 + rng.Float64()))
	if i%5 == 0 {
		d *= slowThinker
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-w.stop:
		return false
	case <-t.C:
		return true
	}
}

func (w *workload) client(i int) {
	defer w.wg.Done()
	rng := rand.New(rand.NewPCG(uint64(i), uint64(time.Now().UnixNano())))
	switch k := kindOf(i); k {
	case kListen:
		w.listener(i, rng)
	case kReconnect:
		w.reconnector(rng)
	default:
		w.pgxClient(i, k, rng)
	}
}

// sessionState is what a kSet client expects its session to show.
type sessionState struct {
	app, tag string
	n        int
}

func (w *workload) pgxConfig(k kind) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig(w.dsn)
	if err != nil {
		return nil, err
	}
	cfg.ConnectTimeout = opTimeout
	switch k {
	case kDescribe:
		cfg.DefaultQueryExecMode = pgx.QueryExecModeDescribeExec
	case kSimple:
		cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	case kPrepChurn:
		cfg.StatementCacheCapacity = 16
	}
	return cfg, nil
}

// login runs connect, at most connectConc at a time, until it works
// (true) or the clients are stopped (false), counting logins and failures.
func (w *workload) login(k kind, connect func(ctx context.Context) error) bool {
	for {
		select {
		case w.connSem <- struct{}{}:
		case <-w.stop:
			return false
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		err := connect(ctx)
		cancel()
		<-w.connSem
		if err == nil {
			w.c.logins.Add(1)
			w.c.open.Add(1)
			return true
		}
		w.c.fail(k, err)
		t := time.NewTimer(retryWait)
		select {
		case <-w.stop:
			t.Stop()
			return false
		case <-t.C:
		}
	}
}

// connectPgx logs in, retrying until it works or the clients are stopped
// (then nil).
func (w *workload) connectPgx(k kind) *pgx.Conn {
	cfg, err := w.pgxConfig(k)
	if err != nil {
		w.c.fail(k, err)
		return nil
	}
	var conn *pgx.Conn
	ok := w.login(k, func(ctx context.Context) error {
		var err error
		if conn, err = pgx.ConnectConfig(ctx, cfg); err != nil {
			return fmt.Errorf("login: %w", err)
		}
		return nil
	})
	if !ok {
		return nil
	}
	return conn
}

// pgxClient runs transactions on one connection until stopped, logging in
// again if the connection is lost.
func (w *workload) pgxClient(i int, k kind, rng *rand.Rand) {
	var conn *pgx.Conn
	var st sessionState
	first := true
	defer func() {
		if conn != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			conn.Close(ctx)
			cancel()
			w.c.open.Add(-1)
		}
	}()
	for {
		if conn == nil {
			if conn = w.connectPgx(k); conn == nil {
				return
			}
			st = sessionState{}
			if first {
				w.c.ready.Add(1)
				first = false
			}
		}
		if !w.think(rng, i) {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		var err error
		switch k {
		case kSet:
			err = w.setIteration(ctx, conn, i, rng, &st)
		case kPrepared:
			err = w.txIteration(ctx, conn, rng, 8)
		case kPrepChurn:
			err = w.txIteration(ctx, conn, rng, 300)
		default:
			err = w.txIteration(ctx, conn, rng, 1)
		}
		cancel()
		if err != nil {
			w.c.fail(k, err)
			if conn.IsClosed() {
				w.c.open.Add(-1)
				conn = nil
			}
			continue
		}
		w.c.tx[k].Add(1)
	}
}

// variant makes query text number v of a query (v = 0: the text itself).
func variant(q string, v int) string {
	if v == 0 {
		return q
	}
	return fmt.Sprintf("%s /* v%d */", q, v)
}

const (
	selectSQL = "SELECT abalance FROM pgbench_accounts WHERE aid = $1"
	updateSQL = "UPDATE pgbench_accounts SET abalance = abalance + $1 WHERE aid = $2"
)

// txIteration is 70% a SELECT by primary key, 30% an explicit transaction
// of UPDATE and SELECT; queries take one of variants texts.
func (w *workload) txIteration(ctx context.Context, conn *pgx.Conn, rng *rand.Rand, variants int) error {
	v := rng.IntN(variants)
	aid := 1 + rng.IntN(w.aids)
	var bal int32
	if rng.IntN(100) < 70 {
		return conn.QueryRow(ctx, variant(selectSQL, v), aid).Scan(&bal)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(ctx) //nolint:errcheck // after Commit it does nothing
	if _, err := tx.Exec(ctx, variant(updateSQL, v), rng.IntN(10001)-5000, aid); err != nil {
		return err
	}
	if err := tx.QueryRow(ctx, variant(selectSQL, v), aid).Scan(&bal); err != nil {
		return err
	}
	return tx.Commit(ctx)
}

// setIteration checks that the session settings the client made before
// are still in force (whichever server it has now), then changes one: a
// SET of application_name, a set_config of a custom setting, or a
// SET LOCAL in a transaction (which must not stick).
func (w *workload) setIteration(ctx context.Context, conn *pgx.Conn, i int, rng *rand.Rand, st *sessionState) error {
	if st.n > 0 {
		var app, tag string
		err := conn.QueryRow(ctx, "SELECT current_setting('application_name'), coalesce(current_setting('soak.tag', true), '')").Scan(&app, &tag)
		if err != nil {
			return err
		}
		if app != st.app || tag != st.tag {
			// Start over from the session as it is, so one lost
			// setting is counted once.
			want := *st
			st.app, st.tag = app, tag
			return fmt.Errorf("session setting lost: application_name %q soak.tag %q, want %q %q", app, tag, want.app, want.tag)
		}
	}
	st.n++
	val := fmt.Sprintf("soak_%d_%d", i, rng.IntN(1000000))
	switch st.n % 3 {
	case 1:
		if _, err := conn.Exec(ctx, "SET application_name = '"+val+"'"); err != nil {
			return err
		}
		st.app = val
	case 2:
		if _, err := conn.Exec(ctx, "SELECT set_config('soak.tag', $1, false)", val); err != nil {
			return err
		}
		st.tag = val
	default:
		tx, err := conn.Begin(ctx)
		if err != nil {
			return err
		}
		defer tx.Rollback(ctx) //nolint:errcheck // after Commit it does nothing
		if _, err := tx.Exec(ctx, "SET LOCAL application_name = 'local_"+val+"'"); err != nil {
			return err
		}
		var bal int32
		if err := tx.QueryRow(ctx, selectSQL, 1+rng.IntN(w.aids)).Scan(&bal); err != nil {
			return err
		}
		return tx.Commit(ctx)
	}
	return nil
}

// listener LISTENs on its own channel and, every iteration, NOTIFYs it and
// waits until its own notification comes back; every 50 iterations it
// UNLISTENs and LISTENs again.
func (w *workload) listener(i int, rng *rand.Rand) {
	channel := fmt.Sprintf("soak_%d", i)
	var last string // payload of the latest notification on channel
	var conn *pgconn.PgConn
	first := true
	defer func() {
		if conn != nil {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			conn.Close(ctx)
			cancel()
			w.c.open.Add(-1)
		}
	}()
	seq := 0
	for {
		if conn == nil {
			conn = w.connectListener(channel, &last)
			if conn == nil {
				return
			}
			if first {
				w.c.ready.Add(1)
				first = false
			}
		}
		if !w.think(rng, i) {
			return
		}
		seq++
		ctx, cancel := context.WithTimeout(context.Background(), notifyTimeout)
		err := w.notifyRoundTrip(ctx, conn, channel, seq, &last)
		cancel()
		if err != nil {
			w.c.fail(kListen, err)
			if conn.IsClosed() {
				w.c.open.Add(-1)
				conn = nil
			}
			continue
		}
		w.c.tx[kListen].Add(1)
	}
}

func (w *workload) connectListener(channel string, last *string) *pgconn.PgConn {
	cfg, err := pgconn.ParseConfig(w.dsn)
	if err != nil {
		w.c.fail(kListen, err)
		return nil
	}
	cfg.ConnectTimeout = opTimeout
	cfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) {
		w.c.notifications.Add(1)
		if n.Channel == channel {
			*last = n.Payload
		}
	}
	var conn *pgconn.PgConn
	ok := w.login(kListen, func(ctx context.Context) error {
		var err error
		if conn, err = pgconn.ConnectConfig(ctx, cfg); err != nil {
			return fmt.Errorf("login and LISTEN: %w", err)
		}
		if _, err = conn.Exec(ctx, "LISTEN "+channel).ReadAll(); err != nil {
			conn.Close(ctx)
			return fmt.Errorf("login and LISTEN: %w", err)
		}
		return nil
	})
	if !ok {
		return nil
	}
	return conn
}

func (w *workload) notifyRoundTrip(ctx context.Context, conn *pgconn.PgConn, channel string, seq int, last *string) error {
	if seq%50 == 0 {
		if _, err := conn.Exec(ctx, "UNLISTEN "+channel).ReadAll(); err != nil {
			return err
		}
		if _, err := conn.Exec(ctx, "LISTEN "+channel).ReadAll(); err != nil {
			return err
		}
	}
	want := fmt.Sprint(seq)
	if _, err := conn.Exec(ctx, "NOTIFY "+channel+", '"+want+"'").ReadAll(); err != nil {
		return err
	}
	for *last != want {
		if err := conn.WaitForNotification(ctx); err != nil {
			if ctx.Err() != nil {
				when := "a later NOTIFY"
				if seq%50 == 0 {
					when = "the NOTIFY right after UNLISTEN and LISTEN"
				}
				if *last != fmt.Sprint(seq-1) {
					when += ", the previous one missing too"
				}
				return fmt.Errorf("own notification not delivered within %v (%s)", notifyTimeout, when)
			}
			return err
		}
	}
	return nil
}

// reconnector logs in, runs one transaction and disconnects, over and
// over: three times in four with a SELECT and a clean Terminate, else with
// BEGIN and UPDATE and then dropping the socket without a word, leaving
// mux to clean the server up.
func (w *workload) reconnector(rng *rand.Rand) {
	first := true
	for {
		if !w.think(rng, 1) {
			return
		}
		err := w.reconnectOnce(rng)
		if err != nil {
			w.c.fail(kReconnect, err)
			continue
		}
		w.c.tx[kReconnect].Add(1)
		if first {
			w.c.ready.Add(1)
			first = false
		}
	}
}

func (w *workload) reconnectOnce(rng *rand.Rand) error {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	conn, err := pgconn.Connect(ctx, w.dsn)
	if err != nil {
		return fmt.Errorf("login: %w", err)
	}
	w.c.logins.Add(1)
	w.c.open.Add(1)
	defer w.c.open.Add(-1)
	aid := fmt.Sprint(1 + rng.IntN(w.aids))
	if rng.IntN(4) == 0 {
		_, err = conn.Exec(ctx, "BEGIN").ReadAll()
		if err == nil {
			err = conn.ExecParams(ctx, updateSQL, [][]byte{[]byte("1"), []byte(aid)}, nil, nil, nil).Read().Err
		}
		_ = conn.Conn().Close() // no Terminate, transaction open
		conn.Close(ctx)         // releases pgconn's state; its Terminate cannot be sent
		return err
	}
	err = conn.ExecParams(ctx, selectSQL, [][]byte{[]byte(aid)}, nil, nil, nil).Read().Err
	if cerr := conn.Close(ctx); err == nil {
		err = cerr
	}
	return err
}

// kindSummary describes the client mix for the report.
func kindSummary(n int) string {
	counts := kindCounts(n)
	var parts []string
	for k := range nKinds {
		parts = append(parts, fmt.Sprintf("%d %s", counts[k], kindNames[k]))
	}
	return strings.Join(parts, ", ")
}
