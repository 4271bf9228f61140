package metrics

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/muxpg/mux/admin"
	"github.com/muxpg/mux/pool"
	"github.com/muxpg/mux/proxy"
)

// getHost GETs path from m's HTTP endpoint naming host in the request.
func (m *testMux) getHost(t *testing.T, path, host string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, m.url+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Host = host
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return resp, string(body)
}

// With a loopback http_listen the page is served, under a CSP that allows
// its own script only, to requests naming a loopback host; other names
// (a DNS name rebound to 127.0.0.1) get 421.
func TestStatusPageServed(t *testing.T) {
	m := startMux(t, workloadConfig())
	host := strings.TrimPrefix(m.url, "http://")
	resp, body := m.getHost(t, "/", host)
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "<canvas") {
		t.Fatalf("GET / = %d:\n%.200s", resp.StatusCode, body)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'sha256-") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("Content-Security-Policy %q", csp)
	}
	for _, external := range []string{"http://", "https://", "src=\"//"} {
		if strings.Contains(body, external) {
			t.Errorf("the page refers to %q: it must need no external asset", external)
		}
	}

	resp, body = m.getHost(t, "/status.json", "localhost:1")
	var st statusJSON
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(body), &st) != nil || st.Now == 0 || st.Pools == nil {
		t.Fatalf("GET /status.json = %d: %s", resp.StatusCode, body)
	}

	for _, path := range []string{"/", "/status.json"} {
		resp, body = m.getHost(t, path, "rebound.example:9127")
		if resp.StatusCode != http.StatusMisdirectedRequest || !strings.Contains(body, "loopback") {
			t.Errorf("GET %s naming rebound.example = %d: %s", path, resp.StatusCode, body)
		}
	}
}

// status_page = "off" turns the page off; "/" says why, and the rest of
// the endpoint is unchanged.
func TestStatusPageOff(t *testing.T) {
	m := startMux(t, "status_page = \"off\"\n"+workloadConfig())
	if code, body := m.get(t, "/"); code != http.StatusNotFound || !strings.Contains(body, `status_page = "off"`) {
		t.Errorf("GET / = %d: %s", code, body)
	}
	if code, _ := m.get(t, "/status.json"); code != http.StatusNotFound {
		t.Errorf("GET /status.json = %d, want 404", code)
	}
	if code, _ := m.get(t, "/healthz"); code != http.StatusOK {
		t.Errorf("GET /healthz = %d", code)
	}
}

// fakeConsole is an admin.Target with set pools and clients (the other
// methods are not called by the status page).
type fakeConsole struct {
	admin.Target
	pools   []admin.Pool
	clients []admin.Client
}

func (f fakeConsole) Pools() []admin.Pool     { return f.pools }
func (f fakeConsole) Clients() []admin.Client { return f.clients }
func (f fakeConsole) Version() string         { return "test" }
func (f fakeConsole) Console() admin.Target   { return f }
func (f fakeConsole) Totals() proxy.PoolStats { return proxy.PoolStats{} }

// The snapshot computes SHOW POOLS' columns as the console does, counts
// pins by pool and reason over every client, and lists at most
// maxStatusClients clients: waiting, then holding a server, then pinned.
func TestStatusSnapshot(t *testing.T) {
	p := admin.Pool{
		Database: "db", User: "u", PoolMode: "transaction",
		ClientsActive: 2, ClientsWaiting: 1, ClientsIdle: 5,
		Servers: []pool.ServerInfo{{State: "active"}, {State: "active"}, {State: "idle"}},
		Total:   4, MaxWait: 1500 * time.Millisecond,
		Stats: admin.Stats{Transactions: 7, Queries: 4, QueryTime: 10 * time.Millisecond},
	}
	var clients []admin.Client
	for i := range maxStatusClients + 50 {
		c := admin.Client{ID: uint64(i + 1), Database: "db", User: "u", Remote: &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 1000 + i}}
		switch i {
		case 120:
			c.Waiting = true
		case 210:
			c.ServerID, c.PinReason = 9, "advisory lock"
		case 230:
			c.PinReason = "temporary table"
		case 240:
			c.PinReason = "temporary table"
		}
		clients = append(clients, c)
	}
	sp := &statusPage{src: fakeConsole{pools: []admin.Pool{p}, clients: clients}, hist: &History{}}
	st := sp.snapshot(time.UnixMilli(1000), 0)

	want := statusPool{Database: "db", User: "u", PoolMode: "transaction", ClActive: 7, ClWaiting: 1, ClServer: 2,
		SvActive: 2, SvIdle: 1, SvLogin: 1, MaxWaitUs: 1_500_000, Pinned: 3, Xacts: 7, AvgQueryUs: 2500}
	if len(st.Pools) != 1 || st.Pools[0] != want {
		t.Errorf("pools = %+v, want [%+v]", st.Pools, want)
	}
	if st.ClientsTotal != maxStatusClients+50 || len(st.Clients) != maxStatusClients {
		t.Errorf("%d clients of %d listed, want %d of %d", len(st.Clients), st.ClientsTotal, maxStatusClients, maxStatusClients+50)
	}
	var first []string
	for _, c := range st.Clients[:5] {
		first = append(first, fmt.Sprintf("%d:%s:%s", c.ID, c.State, c.PinReason))
	}
	if got := strings.Join(first, " "); got != "121:waiting: 211:active:advisory lock 231:idle:temporary table 241:idle:temporary table 1:idle:" {
		t.Errorf("clients listed first: %s", got)
	}
	wantPins := []statusPin{{"db", "u", "temporary table", 2}, {"db", "u", "advisory lock", 1}}
	if !slices.Equal(st.Pins, wantPins) {
		t.Errorf("pins = %+v, want %+v", st.Pins, wantPins)
	}
	if st.Clients[0].Addr != "127.0.0.1:1120" {
		t.Errorf("address %q", st.Clients[0].Addr)
	}
}
