// Command idleclients opens many logged-in client connections through a
// PostgreSQL proxy, leaves them idle, measures the proxy's resident memory
// with none and with all of them connected, then has every client run
// SELECT 1 at the same moment, for a number of rounds, and reports how many
// queries succeeded and their latency.
//
// Usage:
//
//	idleclients -dsn "host=127.0.0.1 port=6432 user=u password=p dbname=d" \
//	    -pid PROXY_PID [-n 10000] [-connect-concurrency 50] [-rounds 3] [-json]
//
// RSS per idle client is (VmRSS with all clients connected and idle − VmRSS
// with none) / n, read from /proc/PROXY_PID/status. Proxy CPU (utime+stime
// from /proc/PROXY_PID/stat) is measured over the query rounds only.
//
// The process needs one file descriptor per client: raise `ulimit -n` above
// n (the command tries to raise its own soft limit to the hard limit).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/muxpg/mux/bench/internal/idle"
	"github.com/muxpg/mux/bench/internal/proc"
	"github.com/muxpg/mux/bench/internal/stats"
	"github.com/muxpg/mux/internal/fdlimit"
)

// Result is what one run measured; -json prints it.
type Result = idle.Result

func main() {
	dsn := flag.String("dsn", "", "libpq keyword/value or URL connection string of the proxy (required)")
	pid := flag.Int("pid", 0, "process id of the proxy, for its RSS and CPU (0: not measured)")
	n := flag.Int("n", 10000, "number of client connections")
	conc := flag.Int("connect-concurrency", 50, "connections being opened at once")
	rounds := flag.Int("rounds", 3, "rounds in which every client runs SELECT 1")
	settle := flag.Duration("settle", 3*time.Second, "wait after the last connection before reading RSS (idle means idle for a few seconds: mux parks clients idle for 1 s)")
	timeout := flag.Duration("timeout", 2*time.Minute, "limit for one connection attempt or one query")
	asJSON := flag.Bool("json", false, "print the result as JSON on stdout")
	flag.Parse()
	if *dsn == "" || *n < 1 || *conc < 1 || *rounds < 0 {
		flag.Usage()
		os.Exit(2)
	}
	if _, err := fdlimit.Raise(uint64(*n) + 100); err != nil {
		fmt.Fprintf(os.Stderr, "idleclients: cannot raise the open-files limit: %v\n", err)
	}

	res, err := run(*dsn, *pid, *n, *conc, *rounds, *settle, *timeout)
	if err != nil {
		fmt.Fprintf(os.Stderr, "idleclients: %v\n", err)
		os.Exit(1)
	}
	if *asJSON {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(res); err != nil {
			fmt.Fprintf(os.Stderr, "idleclients: %v\n", err)
			os.Exit(1)
		}
	} else {
		printText(res)
	}
	if res.ConnectFailures > 0 || res.QueryFailures > 0 {
		os.Exit(3)
	}
}

// errorLog keeps the first few distinct error messages.
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (l *errorLog) add(prefix string, err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	msg := prefix + ": " + err.Error()
	for _, m := range l.msgs {
		if m == msg {
			return
		}
	}
	if len(l.msgs) < 5 {
		l.msgs = append(l.msgs, msg)
	}
}

func run(dsn string, pid, n, conc, rounds int, settle, timeout time.Duration) (*Result, error) {
	cfg, err := pgconn.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	res := &Result{Clients: n, Rounds: rounds}
	var errs errorLog

	if pid > 0 {
		m, err := proc.ReadMem(pid)
		if err != nil {
			return nil, err
		}
		res.RSSNone = m.RSS
	}

	// Connect with at most conc attempts in flight.
	conns := make([]*pgconn.PgConn, n)
	var next atomic.Int64
	var failed atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				c, err := pgconn.ConnectConfig(ctx, cfg)
				cancel()
				if err != nil {
					failed.Add(1)
					errs.add("connect", err)
					continue
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	res.ConnectSeconds = time.Since(start).Seconds()
	res.ConnectFailures = int(failed.Load())
	res.Connected = n - res.ConnectFailures
	defer closeAll(conns, conc)

	time.Sleep(settle)
	if pid > 0 {
		m, err := proc.ReadMem(pid)
		if err != nil {
			return nil, err
		}
		res.RSSAll = m.RSS
		if res.Connected > 0 {
			res.RSSPerClient = float64(res.RSSAll-res.RSSNone) / float64(res.Connected)
		}
	}

	// Query rounds: every connected client sends SELECT 1 as soon as the
	// round starts; a round ends when all have answered.
	var cpu0 time.Duration
	if pid > 0 {
		if cpu0, err = proc.ReadCPU(pid); err != nil {
			return nil, err
		}
	}
	lat := make([]float64, 0, rounds*n)
	var latMu sync.Mutex
	var qfailed atomic.Int64
	for r := 0; r < rounds; r++ {
		begin := make(chan struct{})
		var rwg sync.WaitGroup
		for _, c := range conns {
			if c == nil {
				continue
			}
			rwg.Add(1)
			go func(c *pgconn.PgConn) {
				defer rwg.Done()
				<-begin
				ctx, cancel := context.WithTimeout(context.Background(), timeout)
				defer cancel()
				t0 := time.Now()
				err := selectOne(ctx, c)
				d := time.Since(t0)
				if err != nil {
					qfailed.Add(1)
					errs.add("SELECT 1", err)
					return
				}
				latMu.Lock()
				lat = append(lat, float64(d)/float64(time.Millisecond))
				latMu.Unlock()
			}(c)
		}
		// Let the goroutines reach the barrier before timing the round.
		time.Sleep(200 * time.Millisecond)
		t0 := time.Now()
		close(begin)
		rwg.Wait()
		res.RoundSeconds = append(res.RoundSeconds, time.Since(t0).Seconds())
	}
	if pid > 0 {
		cpu1, err := proc.ReadCPU(pid)
		if err != nil {
			return nil, err
		}
		res.ProxyCPUSeconds = (cpu1 - cpu0).Seconds()
		m, err := proc.ReadMem(pid)
		if err != nil {
			return nil, err
		}
		res.RSSAfter = m.RSS
	}
	res.Queries = rounds * n
	res.QueryFailures = int(qfailed.Load()) + rounds*res.ConnectFailures
	res.QueryOK = len(lat)
	sort.Float64s(lat)
	if len(lat) > 0 { // else the latencies stay 0: JSON has no NaN
		res.LatencyAvgMs = stats.Mean(lat)
		res.LatencyP50Ms = stats.Percentile(lat, 50)
		res.LatencyP99Ms = stats.Percentile(lat, 99)
		res.LatencyMaxMs = lat[len(lat)-1]
	}
	if res.QueryOK > 0 && pid > 0 {
		res.CPUPerQueryUs = res.ProxyCPUSeconds * 1e6 / float64(res.QueryOK)
	}
	res.Errors = errs.msgs
	return res, nil
}

// selectOne runs SELECT 1 with the simple query protocol and checks that
// exactly one row came back.
func selectOne(ctx context.Context, c *pgconn.PgConn) error {
	results, err := c.Exec(ctx, "SELECT 1").ReadAll()
	if err != nil {
		return err
	}
	if len(results) != 1 || len(results[0].Rows) != 1 {
		return errors.New("unexpected result")
	}
	return results[0].Err
}

// closeAll sends Terminate on every connection, conc at a time.
func closeAll(conns []*pgconn.PgConn, conc int) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= len(conns) {
					return
				}
				if conns[i] == nil {
					continue
				}
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				_ = conns[i].Close(ctx)
				cancel()
			}
		}()
	}
	wg.Wait()
}

func printText(r *Result) {
	fmt.Printf("clients:              %d connected of %d (%d failed) in %.1f s\n",
		r.Connected, r.Clients, r.ConnectFailures, r.ConnectSeconds)
	if r.RSSNone > 0 {
		fmt.Printf("proxy RSS:            %.1f MiB with none, %.1f MiB with all idle, %.1f MiB after the queries\n",
			mib(r.RSSNone), mib(r.RSSAll), mib(r.RSSAfter))
		fmt.Printf("RSS per idle client:  %.2f KiB\n", r.RSSPerClient/1024)
	}
	fmt.Printf("SELECT 1:             %d ok of %d (%d failed) in %d rounds\n",
		r.QueryOK, r.Queries, r.QueryFailures, r.Rounds)
	fmt.Printf("latency:              avg %.1f ms, p50 %.1f ms, p99 %.1f ms, max %.1f ms\n",
		r.LatencyAvgMs, r.LatencyP50Ms, r.LatencyP99Ms, r.LatencyMaxMs)
	if r.RSSNone > 0 {
		fmt.Printf("proxy CPU:            %.2f s over the rounds, %.1f µs per query\n",
			r.ProxyCPUSeconds, r.CPUPerQueryUs)
	}
	for _, e := range r.Errors {
		fmt.Printf("error:                %s\n", e)
	}
}

func mib(b int64) float64 { return float64(b) / (1 << 20) }
