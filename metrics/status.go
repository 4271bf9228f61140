package metrics

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"net"
	"net/http"
	"net/netip"
	"sort"
	"strconv"
	"time"

	"github.com/muxpg/mux/admin"
	"github.com/muxpg/mux/config"
)

// The status page: one self-contained HTML file (inline CSS and script, no
// external assets) that polls /status.json. It is read-only.

//go:embed status.html
var statusHTML []byte

// statusCSP allows the page's own inline script (by its hash) and styles,
// and requests to this origin only.
var statusCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; connect-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'; script-src " + scriptHash(statusHTML)

// scriptHash returns the CSP source of the first inline <script> of page.
func scriptHash(page []byte) string {
	_, rest, ok := bytes.Cut(page, []byte("<script>"))
	body, _, ok2 := bytes.Cut(rest, []byte("</script>"))
	if !ok || !ok2 {
		panic("metrics: status.html has no inline <script>")
	}
	sum := sha256.Sum256(body)
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// StatusSource is what the status page reads; *proxy.Proxy is one. The
// pools and clients come from the admin console's own snapshots, so the
// page and SHOW POOLS / SHOW CLIENTS agree.
type StatusSource interface {
	Console() admin.Target
	totalsSource
}

// maxStatusClients bounds the clients listed in /status.json (all are
// counted): waiting ones first, then those holding a server, then pinned.
const maxStatusClients = 200

// statusPage serves "/" and "/status.json".
type statusPage struct {
	src      StatusSource
	hist     *History
	loopback bool // http_listen is a loopback address: Host must be one too
}

type statusJSON struct {
	Now          int64          `json:"now"` // Unix milliseconds
	Version      string         `json:"version"`
	Pools        []statusPool   `json:"pools"`
	ClientsTotal int            `json:"clients_total"`
	Clients      []statusClient `json:"clients"`
	Pins         []statusPin    `json:"pins"`
	History      []Sample       `json:"history"`
}

// statusPool has SHOW POOLS' columns, computed as SHOW POOLS does.
type statusPool struct {
	Database   string `json:"database"`
	User       string `json:"user"`
	PoolMode   string `json:"pool_mode"`
	ClActive   int    `json:"cl_active"` // logged in, not waiting (PgBouncer's cl_active)
	ClWaiting  int    `json:"cl_waiting"`
	ClServer   int    `json:"cl_with_server"` // of cl_active, those holding a server now
	SvActive   int    `json:"sv_active"`
	SvIdle     int    `json:"sv_idle"`
	SvLogin    int    `json:"sv_login"`
	MaxWaitUs  int64  `json:"maxwait_us"`
	Pinned     int    `json:"pinned"`
	Xacts      int64  `json:"total_xact_count"`
	AvgQueryUs int64  `json:"avg_query_us"` // over the pool's life
}

type statusClient struct {
	ID        uint64 `json:"id"`
	Database  string `json:"database"`
	User      string `json:"user"`
	State     string `json:"state"` // waiting, active (holds a server), idle
	Addr      string `json:"addr"`
	AppName   string `json:"application_name"`
	PinReason string `json:"pin_reason"`
	Connected int64  `json:"connect_time"` // Unix milliseconds
	TLS       bool   `json:"tls"`
}

type statusPin struct {
	Database string `json:"database"`
	User     string `json:"user"`
	Reason   string `json:"reason"`
	Clients  int    `json:"clients"`
}

func (sp *statusPage) servePage(w http.ResponseWriter, r *http.Request) {
	if !sp.hostAllowed(w, r) {
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Content-Security-Policy", statusCSP)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	_, _ = w.Write(statusHTML)
}

func (sp *statusPage) serveJSON(w http.ResponseWriter, r *http.Request) {
	if !sp.hostAllowed(w, r) {
		return
	}
	since, _ := strconv.ParseInt(r.URL.Query().Get("since"), 10, 64)
	body, err := json.Marshal(sp.snapshot(time.Now(), since))
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	_, _ = w.Write(body)
}

// hostAllowed refuses, with 421, a request for a loopback-only page that
// names another host: a web page a browser loaded from elsewhere could
// otherwise read it through a DNS name rebound to 127.0.0.1.
func (sp *statusPage) hostAllowed(w http.ResponseWriter, r *http.Request) bool {
	if !sp.loopback || isLoopbackHost(r.Host) {
		return true
	}
	writeText(w, http.StatusMisdirectedRequest, "the status page answers only to a loopback host name (http_listen is a loopback address)")
	return false
}

func isLoopbackHost(hostport string) bool {
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// snapshot builds the page's data at now, with the samples after since.
func (sp *statusPage) snapshot(now time.Time, since int64) statusJSON {
	t := sp.src.Console()
	pools, clients := t.Pools(), t.Clients()
	out := statusJSON{
		Now: now.UnixMilli(), Version: t.Version(),
		Pools: make([]statusPool, 0, len(pools)), ClientsTotal: len(clients),
		Clients: listClients(clients), Pins: countPins(clients),
		History: sp.hist.Since(since),
	}
	pinned := map[[2]string]int{}
	for _, pin := range out.Pins {
		pinned[[2]string{pin.Database, pin.User}] += pin.Clients
	}
	for _, p := range pools {
		row := newStatusPool(p)
		row.Pinned = pinned[[2]string{p.Database, p.User}]
		out.Pools = append(out.Pools, row)
	}
	return out
}

// listClients returns the first maxStatusClients of clients: waiting ones,
// then those holding a server, then pinned ones, then the rest, each by ID.
func listClients(clients []admin.Client) []statusClient {
	out := make([]statusClient, 0, len(clients))
	for _, c := range clients {
		out = append(out, newStatusClient(c))
	}
	sort.SliceStable(out, func(i, j int) bool { return clientRank(out[i]) < clientRank(out[j]) })
	return out[:min(len(out), maxStatusClients)]
}

// countPins counts the pinned clients by pool and reason, most first.
func countPins(clients []admin.Client) []statusPin {
	counts := map[statusPin]int{}
	for _, c := range clients {
		if c.PinReason != "" {
			counts[statusPin{Database: c.Database, User: c.User, Reason: c.PinReason}]++
		}
	}
	out := make([]statusPin, 0, len(counts))
	for k, n := range counts {
		k.Clients = n
		out = append(out, k)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Clients != b.Clients {
			return a.Clients > b.Clients
		}
		return a.Database+"\x00"+a.User+"\x00"+a.Reason < b.Database+"\x00"+b.User+"\x00"+b.Reason
	})
	return out
}

// newStatusPool computes SHOW POOLS' columns as admin's showPools does.
func newStatusPool(p admin.Pool) statusPool {
	sp := statusPool{
		Database: p.Database, User: p.User, PoolMode: p.PoolMode,
		ClActive: p.ClientsActive + p.ClientsIdle, ClWaiting: p.ClientsWaiting, ClServer: p.ClientsActive,
		SvLogin: max(p.Total-len(p.Servers), 0), MaxWaitUs: p.MaxWait.Microseconds(),
		Xacts: p.Stats.Transactions,
	}
	for _, s := range p.Servers {
		if s.State == "idle" {
			sp.SvIdle++
		} else {
			sp.SvActive++
		}
	}
	if p.Stats.Queries > 0 {
		sp.AvgQueryUs = p.Stats.QueryTime.Microseconds() / p.Stats.Queries
	}
	return sp
}

func newStatusClient(c admin.Client) statusClient {
	sc := statusClient{
		ID: c.ID, Database: c.Database, User: c.User, State: "idle",
		AppName: c.ApplicationName, PinReason: c.PinReason,
		Connected: c.ConnectTime.UnixMilli(), TLS: c.TLS,
	}
	if c.Remote != nil {
		sc.Addr = c.Remote.String()
	}
	switch {
	case c.Waiting:
		sc.State = "waiting"
	case c.ServerID != 0:
		sc.State = "active"
	}
	return sc
}

func clientRank(c statusClient) int {
	switch {
	case c.State == "waiting":
		return 0
	case c.State == "active":
		return 1
	case c.PinReason != "":
		return 2
	}
	return 3
}

// routeStatus serves the status page on mux if cfg and src allow, and
// otherwise answers "/" with why it is off.
func (s *Server) routeStatus(mux *http.ServeMux, cfg *config.Config, src PoolSource) {
	ss, ok := src.(StatusSource)
	if !ok || !cfg.ServesStatusPage() {
		mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, _ *http.Request) {
			writeText(w, http.StatusNotFound, "the status page is off: status_page = \""+cfg.StatusPage+
				"\" (\"auto\" serves it only when http_listen is a loopback address); /metrics, /healthz and /readyz are here")
		})
		return
	}
	s.status = &statusPage{src: ss, hist: &History{}, loopback: isLoopbackHost(cfg.HTTPListen)}
	mux.HandleFunc("GET /{$}", s.status.servePage)
	mux.HandleFunc("GET /status.json", s.status.serveJSON)
}

// startHistory samples the pools' totals until Shutdown, if the status
// page is served.
func (s *Server) startHistory() {
	if s.status == nil {
		return
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		sampleLoop(s.status.hist, s.status.src, s.ctx.Done())
	}()
}
