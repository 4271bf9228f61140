//go:build unix

package main

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/muxpg/mux/bench/internal/proc"
)

// sample is one observation of the mux process and the clients.
type sample struct {
	phase       string        // "baseline", "ramp", "load", "after"
	t           time.Duration // since the load phase started (negative before it)
	open        int64         // client connections open
	tps         float64       // client units of work per second since the previous sample
	errs        int64         // client errors since the previous sample
	rss         int64         // VmRSS of mux, bytes
	fds         int           // entries in /proc/<mux>/fd
	goroutines  int           // go_goroutines from /metrics
	heapInuse   int64         // go_memstats_heap_inuse_bytes
	muxClients  int           // sum of mux_clients
	muxServers  int           // sum of mux_servers
	muxParked   int           // mux_clients_parked
	problem     string        // what could not be read, if anything
	metricsRead bool
}

// sampler takes samples; it remembers the client counters of the
// previous sample to compute rates.
type sampler struct {
	e      *env
	w      *workload // nil until the clients start
	http   *http.Client
	zero   time.Time // start of the load phase, once known
	lastAt time.Time
	lastTx int64
	lastEr int64
}

func newSampler(e *env) *sampler {
	// No keep-alive: a scrape leaves no connection (fd, goroutines) open
	// in mux that the next sample would count.
	tr := &http.Transport{DisableKeepAlives: true}
	return &sampler{e: e, http: &http.Client{Timeout: 5 * time.Second, Transport: tr}}
}

func (s *sampler) take(phase string) sample {
	now := time.Now()
	sm := sample{phase: phase}
	if !s.zero.IsZero() {
		sm.t = now.Sub(s.zero)
	}
	var problems []string
	pid := s.e.muxPID()
	// /proc first, then the scrape, so the scrape's own connection is
	// not among the fds.
	if m, err := proc.ReadMem(pid); err != nil {
		problems = append(problems, err.Error())
	} else {
		sm.rss = m.RSS
	}
	if n, err := countFDs(pid); err != nil {
		problems = append(problems, err.Error())
	} else {
		sm.fds = n
	}
	if m, err := s.scrape(); err != nil {
		problems = append(problems, err.Error())
	} else {
		sm.metricsRead = true
		sm.goroutines = int(m["go_goroutines"])
		sm.heapInuse = int64(m["go_memstats_heap_inuse_bytes"])
		sm.muxClients = int(m["mux_clients"])
		sm.muxServers = int(m["mux_servers"])
		sm.muxParked = int(m["mux_clients_parked"])
	}
	if s.w != nil {
		tx, er := s.w.c.totals()
		if !s.lastAt.IsZero() {
			if d := now.Sub(s.lastAt).Seconds(); d > 0 {
				sm.tps = float64(tx-s.lastTx) / d
			}
			sm.errs = er - s.lastEr
		}
		s.lastAt, s.lastTx, s.lastEr = now, tx, er
		sm.open = s.w.c.open.Load()
	}
	sm.problem = strings.Join(problems, "; ")
	return sm
}

// countFDs counts the open file descriptors of a process.
func countFDs(pid int) (int, error) {
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	return len(ents), nil
}

func (s *sampler) scrape() (map[string]float64, error) {
	resp, err := s.http.Get(fmt.Sprintf("http://127.0.0.1:%d/metrics", s.e.httpPort))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: %s", resp.Status)
	}
	return parseMetrics(resp.Body)
}

// parseMetrics reads Prometheus text exposition and returns, per metric
// name, the sum of its samples over all label sets.
func parseMetrics(r io.Reader) (map[string]float64, error) {
	out := map[string]float64{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		name := line
		rest := ""
		if i := strings.IndexAny(line, "{ "); i >= 0 {
			name = line[:i]
			rest = line[i:]
		}
		if strings.HasPrefix(rest, "{") {
			j := strings.LastIndexByte(rest, '}')
			if j < 0 {
				return nil, fmt.Errorf("/metrics: bad line %q", line)
			}
			rest = rest[j+1:]
		}
		fields := strings.Fields(rest)
		if len(fields) == 0 {
			return nil, fmt.Errorf("/metrics: bad line %q", line)
		}
		v, err := strconv.ParseFloat(fields[0], 64)
		if err != nil {
			return nil, fmt.Errorf("/metrics: bad value in %q", line)
		}
		out[name] += v
	}
	return out, sc.Err()
}
