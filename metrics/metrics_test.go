package metrics

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"math"
	"math/big"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/leakcheck"
	"github.com/muxpg/mux/internal/pgtest"
	"github.com/muxpg/mux/proxy"
)

// cluster is the Postgres the workload test talks to; the readiness test
// starts (and stops) one of its own.
var cluster *pgtest.Cluster

const setupSQL = `CREATE ROLE muxuser LOGIN PASSWORD 'muxpass'`

func TestMain(m *testing.M) {
	cluster = pgtest.MustStart(pgtest.Options{})
	code := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		for _, q := range []string{setupSQL, "CREATE DATABASE muxtest OWNER muxuser"} {
			if err := cluster.Exec(ctx, q); err != nil {
				fmt.Fprintln(os.Stderr, "test setup:", err)
				return 1
			}
		}
		return m.Run()
	}()
	_ = cluster.Stop()
	os.Exit(code)
}

// testMux is a mux with its HTTP endpoint, both on free loopback ports.
type testMux struct {
	p    *proxy.Proxy
	http *Server
	dsn  func(user, password, db string) string
	url  string // of the HTTP endpoint, without a path
}

// startMux starts mux with the given TOML (listen and http_listen are
// added) and stops it, checking for leaked goroutines, when the test
// ends. Readiness probes run every 100 ms.
func startMux(t *testing.T, toml string) *testMux {
	t.Helper()
	cfg, err := config.Parse([]byte("listen = [\"127.0.0.1:0\"]\nhttp_listen = \"127.0.0.1:0\"\n" + toml))
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	log := zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel))
	if testing.Verbose() {
		log = zaptest.NewLogger(t, zaptest.Level(zap.DebugLevel))
	}
	snap, err := config.Resolve(cfg)
	if err != nil {
		t.Fatal(err)
	}
	p, err := proxy.New(snap, log)
	if err != nil {
		t.Fatal(err)
	}
	hs := NewServer(cfg, p, log)
	hs.interval, hs.timeout = 100*time.Millisecond, time.Second
	p.SetObserver(hs.Observer())
	if err := hs.Start(); err != nil {
		t.Fatal(err)
	}
	lns, err := p.Listen()
	if err != nil {
		t.Fatal(err)
	}
	addr := lns[0].Addr().(*net.TCPAddr)
	var wg sync.WaitGroup
	for _, ln := range lns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = p.Serve(ln)
		}()
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = p.Shutdown(ctx)
		wg.Wait()
		if err := hs.Shutdown(ctx); err != nil {
			t.Errorf("http shutdown: %v", err)
		}
		leakcheck.Check(t, 5*time.Second)
	})
	return &testMux{
		p: p, http: hs,
		dsn: func(user, password, db string) string {
			return fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s sslmode=disable",
				addr.IP, addr.Port, user, password, db)
		},
		url: "http://" + hs.Addr().String(),
	}
}

// get GETs path from m's HTTP endpoint.
func (m *testMux) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(m.url + path)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp.StatusCode, string(body)
}

// scrape reads /metrics and parses the text exposition.
func (m *testMux) scrape(t *testing.T) families {
	t.Helper()
	code, body := m.get(t, "/metrics")
	if code != http.StatusOK {
		t.Fatalf("/metrics answered %d: %s", code, body)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v\n%s", err, body)
	}
	return fams
}

type families map[string]*dto.MetricFamily

// metric returns the sample of family name whose labels include the
// given name/value pairs, or nil.
func (f families) metric(name string, labels ...string) *dto.Metric {
	fam := f[name]
	if fam == nil {
		return nil
	}
next:
	for _, m := range fam.GetMetric() {
		for i := 0; i+1 < len(labels); i += 2 {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value returns a counter's or gauge's value, or -1 if there is none.
func (f families) value(name string, labels ...string) float64 {
	m := f.metric(name, labels...)
	switch {
	case m == nil:
		return -1
	case m.Counter != nil:
		return m.GetCounter().GetValue()
	case m.Gauge != nil:
		return m.GetGauge().GetValue()
	}
	return m.GetUntyped().GetValue()
}

var pool1 = []string{"database", "muxtest", "user", "muxuser"}

func workloadConfig() string {
	return fmt.Sprintf(`
pool_mode = "transaction"
default_pool_size = 2
[databases.muxtest]
host = %q
port = %d
[users.muxuser]
password = "muxpass"
`, cluster.Host, cluster.Port)
}

// A workload through mux moves the counters and fills the histograms, and
// a client in a transaction shows as active, with its server.
func TestMetricsUnderWorkload(t *testing.T) {
	m := startMux(t, workloadConfig())
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	before := m.scrape(t)
	if before["go_goroutines"] == nil || before["process_open_fds"] == nil {
		t.Error("the Go runtime and process collectors are missing")
	}
	if v := before.value("mux_queries_total", pool1...); v != -1 {
		t.Errorf("a pool before any client: mux_queries_total = %v", v)
	}

	// A failed login and an error.
	if _, err := pgx.Connect(ctx, m.dsn("muxuser", "wrong", "muxtest")); err == nil {
		t.Fatal("login with a wrong password succeeded")
	}
	holder, err := pgx.Connect(ctx, m.dsn("muxuser", "muxpass", "muxtest"))
	if err != nil {
		t.Fatal(err)
	}
	defer holder.Close(ctx)
	if _, err := holder.Exec(ctx, "SELECT 1/0"); err == nil {
		t.Fatal("SELECT 1/0 succeeded")
	}

	// Six clients on a pool of two: they wait for servers.
	const clients, rounds = 6, 40
	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := pgx.Connect(ctx, m.dsn("muxuser", "muxpass", "muxtest"))
			if err != nil {
				errs <- err
				return
			}
			defer conn.Close(ctx)
			for r := range rounds {
				var n int
				if err := conn.QueryRow(ctx, "SELECT $1::int", i*rounds+r).Scan(&n); err != nil {
					errs <- err
					return
				}
				tx, err := conn.Begin(ctx)
				if err != nil {
					errs <- err
					return
				}
				if _, err := tx.Exec(ctx, "SELECT pg_sleep(0.002)"); err != nil {
					errs <- err
					return
				}
				if err := tx.Commit(ctx); err != nil {
					errs <- err
					return
				}
			}
		}()
	}

	// Mid-workload: a client holding a transaction open is active.
	tx, err := holder.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	mid := m.scrape(t)
	if v := mid.value("mux_clients", append(pool1, "state", "active")...); v < 1 {
		t.Errorf("mux_clients{state=active} = %v during a transaction, want >= 1", v)
	}
	if v := mid.value("mux_servers", append(pool1, "state", "active")...); v < 1 {
		t.Errorf("mux_servers{state=active} = %v during a transaction, want >= 1", v)
	}
	for _, st := range []string{"waiting", "idle"} {
		if v := mid.value("mux_clients", append(pool1, "state", st)...); v < 0 {
			t.Errorf("mux_clients{state=%s} missing", st)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("workload: %v", err)
	}

	after := m.scrape(t)
	wantQueries := float64(clients * rounds * 3) // SELECT, then BEGIN+SELECT+COMMIT in one or more
	for _, c := range []struct {
		name string
		min  float64
	}{
		{"mux_queries_total", wantQueries},
		{"mux_transactions_total", clients * rounds * 2},
		{"mux_pool_waits_total", clients * rounds},
		{"mux_query_time_seconds_total", clients * rounds * 0.002},
		{"mux_transaction_time_seconds_total", clients * rounds * 0.002},
		{"mux_received_bytes_total", 1000},
		{"mux_sent_bytes_total", 1000},
		{"mux_prepared_client_parses_total", 1},
		{"mux_prepared_server_parses_total", 1},
	} {
		if v := after.value(c.name, pool1...); v < c.min {
			t.Errorf("%s = %v, want >= %v", c.name, v, c.min)
		}
	}
	if a, b := after.value("mux_queries_total", pool1...), mid.value("mux_queries_total", pool1...); a <= b {
		t.Errorf("mux_queries_total did not grow during the workload: %v then %v", b, a)
	}
	if v := after.value("mux_pool_size", pool1...); v != 2 {
		t.Errorf("mux_pool_size = %v, want 2", v)
	}
	if v := after.value("mux_servers", append(pool1, "state", "idle")...); v < 1 || v > 2 {
		t.Errorf("mux_servers{state=idle} = %v after the workload, want 1..2", v)
	}
	if v := after.value("mux_errors_total", append(pool1, "class", "22")...); v != 1 {
		t.Errorf("mux_errors_total{class=22} = %v after one division by zero, want 1", v)
	}
	if v := after.value("mux_login_failures_total", "sqlstate", "28P01"); v != 1 {
		t.Errorf("mux_login_failures_total{sqlstate=28P01} = %v, want 1", v)
	}

	// The workers' Terminates reach mux shortly after their Close; the
	// client left idle is parked after a second.
	for deadline := time.Now().Add(5 * time.Second); ; {
		sc := m.scrape(t)
		idle, parked := sc.value("mux_clients", append(pool1, "state", "idle")...), sc.value("mux_clients_parked")
		if idle == 1 && parked == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("mux_clients{state=idle} = %v, mux_clients_parked = %v with one idle client left, want 1 and 1", idle, parked)
			break
		}
		time.Sleep(20 * time.Millisecond)
	}

	// The histograms: every observation counted, and in finite buckets.
	for _, c := range []struct {
		name string
		min  uint64
	}{
		{"mux_pool_wait_seconds", clients * rounds},
		{"mux_query_duration_seconds", uint64(wantQueries / 3)}, // observed once per batch of answers
		{"mux_transaction_duration_seconds", clients * rounds * 2},
	} {
		m := after.metric(c.name, pool1...)
		if m == nil || m.Histogram == nil {
			t.Errorf("%s: no histogram", c.name)
			continue
		}
		h := m.GetHistogram()
		if h.GetSampleCount() < c.min {
			t.Errorf("%s: %d observations, want >= %d", c.name, h.GetSampleCount(), c.min)
		}
		var finite uint64
		for _, b := range h.GetBucket() {
			if !math.IsInf(b.GetUpperBound(), 1) {
				finite = max(finite, b.GetCumulativeCount())
			}
		}
		if finite == 0 || h.GetSampleSum() <= 0 {
			t.Errorf("%s: empty buckets (largest finite cumulative count %d, sum %v)", c.name, finite, h.GetSampleSum())
		}
	}
}

// Readiness follows Postgres: unready a few failed probes after it
// stops, ready again once it is back; unready while draining. /healthz
// answers throughout.
func TestReadiness(t *testing.T) {
	own, err := pgtest.Start(pgtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer own.Stop()
	m := startMux(t, fmt.Sprintf(`
[databases.app]
host = %q
port = %d
[databases."*"]
host = "127.0.0.1"
port = 1
[users.postgres]
password = "x"
`, own.Host, own.Port))

	expect := func(code int, want string) string {
		t.Helper()
		deadline := time.Now().Add(15 * time.Second)
		for {
			got, body := m.get(t, "/readyz")
			if got == code && strings.Contains(body, want) {
				return body
			}
			if time.Now().After(deadline) {
				t.Fatalf("/readyz answered %d %q, want %d with %q", got, body, code, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	healthy := func() {
		t.Helper()
		if code, body := m.get(t, "/healthz"); code != http.StatusOK || body != "ok\n" {
			t.Fatalf("/healthz answered %d %q", code, body)
		}
	}

	healthy()
	expect(http.StatusServiceUnavailable, "not listening")
	m.http.SetListening(true)
	expect(http.StatusOK, "ready")

	if err := own.StopServer(); err != nil {
		t.Fatal(err)
	}
	// (TestTargetDebounce checks that it takes three failed probes.)
	body := expect(http.StatusServiceUnavailable, "unreachable")
	if !strings.Contains(body, "database app (tcp "+net.JoinHostPort(own.Host, fmt.Sprint(own.Port))+")") {
		t.Errorf("/readyz does not name the database and its address: %q", body)
	}
	if strings.Contains(body, "127.0.0.1:1") {
		t.Errorf("the \"*\" entry was probed: %q", body)
	}
	healthy()

	if err := own.StartServer(); err != nil {
		t.Fatal(err)
	}
	expect(http.StatusOK, "ready")

	m.http.SetDraining(true)
	expect(http.StatusServiceUnavailable, "draining")
	healthy()
}

// With only the "*" entry nothing is probed: ready means listening and not
// draining.
func TestReadinessWildcardOnly(t *testing.T) {
	cfg, err := config.Parse([]byte(`
[databases."*"]
host = "127.0.0.1"
port = 1
[users.u]
password = "x"
`))
	if err != nil {
		t.Fatal(err)
	}
	s := NewServer(cfg, poolsFunc(nil), zap.NewNop())
	if ok, problems := s.ready(); ok || len(problems) != 1 || problems[0] != "not listening" {
		t.Fatalf("ready() = %v %q before listening", ok, problems)
	}
	s.SetListening(true)
	if ok, problems := s.ready(); !ok {
		t.Fatalf("not ready: %q", problems)
	}
}

type poolsFunc []proxy.PoolInfo

func (p poolsFunc) Pools() []proxy.PoolInfo { return p }
func (p poolsFunc) ParkedClients() int      { return 0 }

// A server counts as unreachable only after probeFailures failed probes
// in a row, and as reachable again after one success.
func TestTargetDebounce(t *testing.T) {
	tg := &target{network: "tcp", address: "db:5432", databases: []string{"app"}}
	fail := fmt.Errorf("connection refused")
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	steps := []struct {
		err  error
		want probeState
	}{
		{fail, stateUnknown}, // never reached yet: not ready either
		{nil, stateUp},
		{fail, stateUp},
		{fail, stateUp},
		{nil, stateUp}, // a blip
		{fail, stateUp},
		{fail, stateUp},
		{fail, stateDown},
		{fail, stateDown},
		{nil, stateUp},
	}
	for i, s := range steps {
		if _, got := tg.record(s.err, 3, now.Add(time.Duration(i)*time.Second)); got != s.want {
			t.Fatalf("step %d: state %v, want %v", i, got, s.want)
		}
		if i == 7 {
			if p := tg.problem(); !strings.Contains(p, "unreachable since 2026-01-02T03:04:10Z (3 failed probes)") ||
				!strings.Contains(p, "connection refused") {
				t.Fatalf("problem: %q", p)
			}
		}
	}
	if p := tg.problem(); p != "" {
		t.Fatalf("problem after recovery: %q", p)
	}
}

// probe against servers that answer the SSLRequest in different ways.
func TestProbe(t *testing.T) {
	cases := []struct {
		name    string
		serve   func(c net.Conn) // nil: nothing listens
		wantErr string
	}{
		{"answers N", func(c net.Conn) { readSSLRequest(c); c.Write([]byte("N")) }, ""},
		{"answers S, then TLS", func(c net.Conn) {
			readSSLRequest(c)
			c.Write([]byte("S"))
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}})
			if err := tc.Handshake(); err != nil {
				t.Errorf("TLS handshake: %v", err)
				return
			}
			// The probe closes without sending a startup packet.
			if n, err := tc.Read(make([]byte, 1)); n != 0 || err != io.EOF {
				t.Errorf("after the handshake: read %d, %v; want EOF", n, err)
			}
		}, ""},
		{"answers S, then TLS fails", func(c net.Conn) { readSSLRequest(c); c.Write([]byte("S")) }, ""},
		{"answers garbage", func(c net.Conn) { readSSLRequest(c); c.Write([]byte("HTTP/1.1 400")) }, "not a PostgreSQL server"},
		{"closes", func(c net.Conn) { readSSLRequest(c) }, "no answer"},
		{"never answers", func(c net.Conn) { readSSLRequest(c); _, _ = io.Copy(io.Discard, c) }, "no answer"},
		{"not listening", nil, "refused"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			addr := ln.Addr().String()
			done := make(chan struct{})
			if tc.serve == nil {
				ln.Close()
				close(done)
			} else {
				go func() {
					defer close(done)
					c, err := ln.Accept()
					if err != nil {
						return
					}
					defer c.Close()
					tc.serve(c)
				}()
				defer ln.Close()
			}
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			err = probe(ctx, "tcp", addr)
			switch {
			case tc.wantErr == "" && err != nil:
				t.Fatalf("probe: %v", err)
			case tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)):
				t.Fatalf("probe error %v, want one containing %q", err, tc.wantErr)
			}
			<-done
		})
	}
}

// selfSigned returns a throwaway certificate for 127.0.0.1.
func selfSigned(t *testing.T) tls.Certificate {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}

func readSSLRequest(c net.Conn) {
	buf := make([]byte, len(sslRequest))
	_, _ = io.ReadFull(c, buf)
}

// Error classes and SQLSTATE labels are bounded: malformed codes become
// "other".
func TestObserverLabels(t *testing.T) {
	s := NewServer(&config.Config{}, poolsFunc(nil), zap.NewNop())
	o := s.Observer()
	po := o.Pool("db", "u")
	po.ErrorSent("42P01")
	po.ErrorSent("42601")
	po.ErrorSent("x")
	po.ErrorSent("42p01")
	o.LoginFailed("28P01")
	o.LoginFailed("")
	o.LoginFailed("28P01\n")
	fams, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			if m.Counter == nil || !strings.HasPrefix(f.GetName(), "mux_") {
				continue
			}
			var ls []string
			for _, lp := range m.GetLabel() {
				ls = append(ls, lp.GetName()+"="+lp.GetValue())
			}
			got[f.GetName()+"{"+strings.Join(ls, ",")+"}"] = m.GetCounter().GetValue()
		}
	}
	want := map[string]float64{
		"mux_errors_total{class=42,database=db,user=u}":    2,
		"mux_errors_total{class=other,database=db,user=u}": 2,
		"mux_login_failures_total{sqlstate=28P01}":         1,
		"mux_login_failures_total{sqlstate=other}":         2,
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("counters %v, want %v", got, want)
	}
}

// A pool's series appear with its first event, and names that are not
// UTF-8 (a client may send any bytes as a database name) become escaped
// label values instead of a panic, in the observer and in the collector;
// a dropped pool's series go, and stay gone.
func TestPoolSeriesLazyAndNamesEscaped(t *testing.T) {
	pools := poolsFunc{{Database: "db\xff", User: "u"}, {Database: "db\xfe", User: "u"}}
	s := NewServer(&config.Config{}, pools, zap.NewNop())
	o := s.Observer()
	quiet := o.Pool("quiet", "u")
	bad := o.Pool("db\xff", "u")
	bad.Query(time.Millisecond)
	bad.ErrorSent("42P01")
	seen := seriesByDatabase(t, s)
	for _, want := range []string{
		`mux_query_duration_seconds db\xff`,
		`mux_errors_total db\xff`,
		`mux_pool_wait_seconds db\xff`, // made with the pool's other series
		`mux_clients db\xff`,
		`mux_clients db\xfe`,
	} {
		if !seen[want] {
			t.Errorf("no series %q in %v", want, seen)
		}
	}
	for k := range seen {
		if strings.HasSuffix(k, " quiet") {
			t.Errorf("series %q for a pool with no events", k)
		}
	}

	bad.Close()
	bad.Query(time.Millisecond)
	bad.ErrorSent("42P01")
	quiet.Close()
	quiet.PoolWait(time.Millisecond)
	for k := range seriesByDatabase(t, s) {
		switch strings.Fields(k)[0] {
		case "mux_pool_wait_seconds", "mux_query_duration_seconds", "mux_transaction_duration_seconds", "mux_errors_total":
			t.Errorf("series %q left after Close", k)
		}
	}
}

// seriesByDatabase gathers s's metrics as "family database" for every
// series with a database label.
func seriesByDatabase(t *testing.T, s *Server) map[string]bool {
	t.Helper()
	fams, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "database" {
					seen[f.GetName()+" "+lp.GetValue()] = true
				}
			}
		}
	}
	return seen
}

// StartWhenFree listens once the address is released.
func TestStartWhenFree(t *testing.T) {
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{HTTPListen: busy.Addr().String()}
	s := NewServer(cfg, poolsFunc(nil), zaptest.NewLogger(t))
	s.StartWhenFree()
	defer func() {
		if err := s.Shutdown(context.Background()); err != nil {
			t.Error(err)
		}
		leakcheck.Check(t, 5*time.Second)
	}()
	time.Sleep(3 * retryInterval)
	if a := s.Addr(); a != nil {
		t.Fatalf("listening on %v while the address is in use", a)
	}
	busy.Close()
	deadline := time.Now().Add(5 * time.Second)
	for s.Addr() == nil {
		if time.Now().After(deadline) {
			t.Fatal("not listening after the address was freed")
		}
		time.Sleep(10 * time.Millisecond)
	}
	resp, err := http.Get("http://" + s.Addr().String() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/healthz: %s", resp.Status)
	}
}
