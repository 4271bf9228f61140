package metrics

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// chromiumPath is where Debian's chromium package puts the browser; the
// MUX_CHROMIUM environment variable names another.
const chromiumPath = "/usr/bin/chromium"

// screenshotEnv names a file: TestStatusPageInBrowser then also runs a
// longer, varied pgbench load and saves a screenshot of the page under it
// there (docs/status-page.png is made so).
const screenshotEnv = "MUX_STATUS_SCREENSHOT"

// browser starts headless Chromium for the test. A missing browser fails
// the test: CI installs it (.ci/run).
func browser(t *testing.T) context.Context {
	t.Helper()
	path := os.Getenv("MUX_CHROMIUM")
	if path == "" {
		path = chromiumPath
	}
	if _, err := exec.LookPath(path); err != nil {
		t.Fatalf("no Chromium at %s (%v): install it (Debian: apt-get install -y chromium; .ci/run does) or name it in MUX_CHROMIUM", path, err)
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.WindowSize(1400, 1000),
		chromedp.Flag("disable-gpu", true),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	return ctx
}

// pageState is what the test reads off the rendered page.
type pageState struct {
	Now     int64                        `json:"now"` // the snapshot rendered last (Unix ms)
	Tiles   map[string]string            `json:"tiles"`
	Pools   map[string]map[string]string `json:"pools"` // by "database/user", cells by column key
	Pins    []map[string]string          `json:"pins"`
	Clients []map[string]string          `json:"clients"`
	Images  int                          `json:"images"` // <img> elements: none, unless a name got parsed as HTML
	Charts  map[string]chartState        `json:"charts"`
	Xacts   string                       `json:"xacts"` // transactions in the charts' span
}

type chartState struct {
	Points string `json:"points"`
	Max    string `json:"max"`
}

const readPageJS = `(() => {
  const cells = tr => { const r = {}; for (const td of tr.querySelectorAll("td[data-k]")) r[td.getAttribute("data-k")] = td.textContent; return r; };
  const rows = id => Array.from(document.querySelectorAll("#" + id + " tbody tr:not(.empty)"), cells);
  const out = { now: Number(document.body.getAttribute("data-now") || 0), tiles: {}, pools: {}, charts: {},
    pins: rows("pins"), clients: rows("clients"), images: document.images.length,
    xacts: document.getElementById("xacts-15m").textContent };
  for (const el of document.querySelectorAll(".tile .v")) out.tiles[el.id] = el.textContent;
  for (const tr of document.querySelectorAll("#pools tbody tr[data-pool]")) {
    const c = cells(tr); out.pools[c.database + "/" + c.user] = c;
  }
  for (const cv of document.querySelectorAll("canvas")) {
    out.charts[cv.id] = { points: cv.getAttribute("data-points") || "", max: cv.getAttribute("data-max") || "" };
  }
  return out;
})()`

// readPage waits for the page to render a snapshot taken after `after`
// and returns what it shows.
func readPage(t *testing.T, ctx context.Context, after time.Time) pageState {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := chromedp.Run(ctx, chromedp.Evaluate[pageState](readPageJS))
		if err != nil {
			t.Fatalf("reading the page: %v", err)
		}
		if st.Now > after.UnixMilli() {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("the page rendered nothing newer than %v in 30s (last: %d)", after, st.Now)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// console runs a SHOW command on the admin console and returns its rows
// by column name.
func console(t *testing.T, conn *pgconn.PgConn, q string) []map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	results, err := conn.Exec(ctx, q).ReadAll()
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	var out []map[string]string
	for _, res := range results {
		for _, row := range res.Rows {
			m := map[string]string{}
			for i, f := range res.FieldDescriptions {
				m[f.Name] = string(row[i])
			}
			out = append(out, m)
		}
	}
	return out
}

func find(rows []map[string]string, col, val string) map[string]string {
	for _, r := range rows {
		if r[col] == val {
			return r
		}
	}
	return nil
}

// totalXacts sums SHOW STATS' total_xact_count over the pools.
func totalXacts(t *testing.T, conn *pgconn.PgConn) int64 {
	t.Helper()
	var sum int64
	for _, r := range console(t, conn, "SHOW STATS") {
		n, err := strconv.ParseInt(r["total_xact_count"], 10, 64)
		if err != nil {
			t.Fatalf("SHOW STATS total_xact_count %q: %v", r["total_xact_count"], err)
		}
		sum += n
	}
	return sum
}

// hostile is an application_name a page that parsed names as HTML would
// turn into an element.
const hostile = `<img src=x onerror="document.title='owned'">`

// The status page, in a real browser, shows what the admin console shows:
// exactly, for a held state (clients connected, one in a transaction, one
// pinned, one waiting for a server); within a stated tolerance while
// pgbench runs; and exactly again once it has finished. Names are shown
// as text, never parsed as HTML.
func TestStatusPageInBrowser(t *testing.T) {
	cfg := "admin_users = [\"muxuser\"]\n"
	if os.Getenv(screenshotEnv) != "" {
		cfg += "query_wait_timeout = \"10m\"\n" + workloadConfig() + fmt.Sprintf(
			"[databases.reports]\nhost = %q\nport = %d\ndbname = \"muxtest\"\npool_size = 2\n", cluster.Host, cluster.Port)
	} else {
		cfg += workloadConfig()
	}
	m := startMux(t, cfg)
	bctx := browser(t)
	consoleErrors := watchConsole(bctx)
	page := m.url + "/"
	if os.Getenv(screenshotEnv) != "" {
		page += "#span=3"
	}
	if err := chromedp.Do(bctx, chromedp.Navigate(page)); err != nil {
		t.Fatalf("opening %s: %v", page, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	adm, err := pgconn.Connect(ctx, m.dsn("muxuser", "muxpass", "pgbouncer"))
	if err != nil {
		t.Fatal(err)
	}
	defer adm.Close(context.Background())

	release := holdState(t, ctx, m)
	checkHeldState(t, bctx, adm)
	release()

	checkUnderPgbench(t, bctx, adm, m)
	checkHover(t, bctx)
	for _, msg := range consoleErrors() {
		t.Errorf("the page's console: %s", msg)
	}
}

// watchConsole collects the errors and uncaught exceptions of the page's
// console (a script error, a CSP violation, a failed load) until the
// browser closes; the function returned lists them so far. Call it
// before anything else runs in the browser.
func watchConsole(bctx context.Context) func() []string {
	var mu sync.Mutex
	var msgs []string
	console := chromedp.Console(bctx) // starts the browser: not concurrently with a Run
	go func() {
		for msg, err := range console {
			if err != nil {
				return
			}
			if msg.IsException() || msg.Type == chromedp.ConsoleError {
				mu.Lock()
				msgs = append(msgs, msg.String())
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(msgs)
	}
}

// checkHover points at the transactions chart's last sample: a tip shows
// its time and rate.
func checkHover(t *testing.T, bctx context.Context) {
	xy, err := chromedp.Run(bctx, chromedp.Evaluate[[]float64](
		`(() => {
			const cv = document.getElementById("chart-tps"), r = cv.getBoundingClientRect(), v = cv.view;
			const last = v.pts[v.pts.length - 1][0];
			return [r.left + v.left + (last - v.t0) / SPAN_MS * v.pw - 3, r.top + r.height / 2];
		})()`))
	if err != nil || len(xy) != 2 {
		t.Fatalf("the chart's place: %v %v", xy, err)
	}
	if err := chromedp.Do(bctx, chromedp.MouseEvent(chromedp.MouseMoved, xy[0], xy[1])); err != nil {
		t.Fatal(err)
	}
	tip, err := chromedp.Run(bctx, chromedp.Evaluate[[]string](
		`(() => { const tip = document.getElementById("tip"); return [getComputedStyle(tip).display, tip.textContent]; })()`))
	if err != nil || len(tip) != 2 || tip[0] != "block" || !strings.HasSuffix(tip[1], "/s") {
		t.Errorf("hovering over the chart: tip %q (%v), want one shown ending in /s", tip, err)
	}
}

// holdState makes a state that stays put until release: on a pool of two
// servers, one client in a transaction, one pinned by a temporary table
// (both hold a server), one waiting for a server, and one idle client with
// a hostile application_name.
func holdState(t *testing.T, ctx context.Context, m *testMux) (release func()) {
	t.Helper()
	connect := func(extra string) *pgx.Conn {
		conn, err := pgx.Connect(ctx, m.dsn("muxuser", "muxpass", "muxtest")+extra)
		if err != nil {
			t.Fatal(err)
		}
		return conn
	}
	inTx, pinned, waiter := connect(""), connect(""), connect("")
	idle := connect(" application_name='" + strings.ReplaceAll(hostile, "'", `\'`) + "'")
	tx, err := inTx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "SELECT 1"); err != nil {
		t.Fatal(err)
	}
	if _, err := pinned.Exec(ctx, "CREATE TEMP TABLE status_pin (x int)"); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() {
		_, err := waiter.Exec(ctx, "SELECT 1")
		waited <- err
	}()
	return func() {
		t.Helper()
		if err := tx.Commit(ctx); err != nil {
			t.Error(err)
		}
		if err := <-waited; err != nil {
			t.Errorf("the waiting client's query: %v", err)
		}
		for _, c := range []*pgx.Conn{inTx, pinned, waiter, idle} {
			c.Close(ctx)
		}
	}
}

// checkHeldState compares the page with SHOW POOLS and SHOW CLIENTS once
// the console shows the held state (a pin is decided off the client's
// path, a waiter queues after its query is sent).
func checkHeldState(t *testing.T, bctx context.Context, adm *pgconn.PgConn) {
	var pool map[string]string
	var clients []map[string]string
	deadline := time.Now().Add(20 * time.Second)
	for {
		pool = find(console(t, adm, "SHOW POOLS"), "database", "muxtest")
		clients = console(t, adm, "SHOW CLIENTS")
		if pool != nil && pool["cl_waiting"] == "1" && pinReason(clients) != "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the held state did not show in the console: SHOW POOLS %v, SHOW CLIENTS %v", pool, clients)
		}
		time.Sleep(50 * time.Millisecond)
	}
	st := readPage(t, bctx, time.Now())
	t.Logf("console: %v", pool)
	t.Logf("page: tiles %v, pools %v, pins %v", st.Tiles, st.Pools, st.Pins)

	row := st.Pools["muxtest/muxuser"]
	if row == nil {
		t.Fatalf("the page has no pool muxtest/muxuser: %v", st.Pools)
	}
	for _, col := range []string{"cl_active", "cl_waiting", "sv_active", "sv_idle", "sv_login", "pool_mode"} {
		if row[col] != pool[col] {
			t.Errorf("pool %s: page %q, SHOW POOLS %q", col, row[col], pool[col])
		}
	}
	want := map[string]string{ // this state, as the console shows it
		"cl_active": "3", "cl_waiting": "1", "sv_active": "2", "cl_with_server": "2", "pinned": "1",
	}
	for col, v := range want {
		if row[col] != v {
			t.Errorf("pool %s = %q on the page, want %q", col, row[col], v)
		}
	}
	if len(st.Pools) != 1 || st.Tiles["sum-pools"] != "1" || st.Tiles["sum-clients"] != "4" ||
		st.Tiles["sum-waiting"] != "1" || st.Tiles["sum-sv-active"] != "2" || st.Tiles["sum-pinned"] != "1" {
		t.Errorf("tiles %v for pools %v, want 1 pool, 4 clients, 1 waiting, 2 servers active, 1 pinned", st.Tiles, st.Pools)
	}
	reason := pinReason(clients)
	if len(st.Pins) != 1 || st.Pins[0]["reason"] != reason || st.Pins[0]["clients"] != "1" || st.Pins[0]["database"] != "muxtest" {
		t.Errorf("page pins %v, want one client pinned for %q (SHOW CLIENTS pin_reason)", st.Pins, reason)
	}
	checkClients(t, st, clients)
}

func pinReason(clients []map[string]string) string {
	for _, c := range clients {
		if c["pin_reason"] != "" {
			return c["pin_reason"]
		}
	}
	return ""
}

// checkClients compares the page's clients with SHOW CLIENTS (the console
// session aside), by id (SHOW CLIENTS' ptr is the id in hex).
func checkClients(t *testing.T, st pageState, clients []map[string]string) {
	states := map[string]int{}
	for _, c := range st.Clients {
		states[c["state"]]++
		id, _ := strconv.ParseUint(c["id"], 10, 64)
		var cc map[string]string
		for _, r := range clients {
			if ptr, err := strconv.ParseUint(strings.TrimPrefix(r["ptr"], "0x"), 16, 64); err == nil && ptr == id {
				cc = r
			}
		}
		if cc == nil {
			t.Errorf("page client %v is not in SHOW CLIENTS", c)
			continue
		}
		if c["user"] != cc["user"] || c["database"] != cc["database"] || c["application_name"] != cc["application_name"] ||
			c["pin_reason"] != cc["pin_reason"] || !strings.HasPrefix(c["addr"], cc["addr"]+":"+cc["port"]) {
			t.Errorf("page client %v, SHOW CLIENTS %v", c, cc)
		}
	}
	if len(st.Clients) != 4 || states["waiting"] != 1 || states["active"] != 2 || states["idle"] != 1 {
		t.Errorf("page clients %v, want 4: 1 waiting, 2 active, 1 idle", st.Clients)
	}
	if find(st.Clients, "application_name", hostile) == nil {
		t.Errorf("the hostile application_name is not shown as text: %v", st.Clients)
	}
	if st.Images != 0 {
		t.Errorf("the page has %d <img> elements: a name was parsed as HTML", st.Images)
	}
}

// checkUnderPgbench runs pgbench through mux. While it runs, the page's
// transaction count trails SHOW STATS' by at most xactLagTolerance of
// transactions at the measured rate (the history is sampled each second and
// the page polls each second); once it has finished and a sample has
// passed, the two agree exactly. The charts have data.
func checkUnderPgbench(t *testing.T, bctx context.Context, adm *pgconn.PgConn, m *testMux) {
	const xactLagTolerance = 4 * time.Second
	shot := os.Getenv(screenshotEnv)
	phases := [][]string{{"-c", "4", "-T", "12"}}
	if shot != "" {
		phases = [][]string{
			{"-c", "2", "-T", "25"}, {"-c", "8", "-T", "30"},
			{"-c", "4", "-R", "300", "-T", "30"}, {"-c", "6", "-T", "40"},
		}
	}
	if shot != "" {
		defer screenshotScene(t, m)()
	}
	start, startXacts := time.Now(), totalXacts(t, adm)
	done := make(chan error, 1)
	go func() { done <- runPgbench(t, m, phases) }()

	checked := false
	for running := true; running; {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			running = false
			continue
		case <-time.After(6 * time.Second):
		}
		before := time.Now()
		c1 := totalXacts(t, adm)
		st := readPage(t, bctx, before)
		c2 := totalXacts(t, adm)
		rate := float64(c1-startXacts) / before.Sub(start).Seconds()
		slack := int64(rate * xactLagTolerance.Seconds())
		page, err := strconv.ParseInt(st.Xacts, 10, 64)
		if err != nil {
			t.Fatalf("page transaction count %q: %v", st.Xacts, err)
		}
		t.Logf("under pgbench: console %d..%d, page %d, %.0f tps, tolerance %d", c1, c2, page, rate, slack)
		if page > c2 || page < c1-slack {
			t.Errorf("under pgbench: page counts %d transactions, console %d..%d: more than %v (%d) apart",
				page, c1, c2, xactLagTolerance, slack)
		}
		checked = true
		if shot != "" && time.Since(start) > 110*time.Second {
			saveScreenshot(t, bctx, shot)
			shot = ""
		}
	}
	if !checked {
		t.Error("pgbench ended before the page was compared with the console under load")
	}

	// Once a sample has been taken after the last transaction (about a
	// second; a loaded machine may take longer), the counts are equal.
	console := totalXacts(t, adm)
	var st pageState
	for deadline := time.Now().Add(15 * time.Second); ; {
		st = readPage(t, bctx, time.Now())
		if st.Xacts == strconv.FormatInt(console, 10) {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("after pgbench: page counts %s transactions, SHOW STATS %d", st.Xacts, console)
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if c := totalXacts(t, adm); c != console {
		t.Errorf("SHOW STATS moved from %d to %d after pgbench ended", console, c)
	}
	tps := st.Charts["chart-tps"]
	if n, _ := strconv.Atoi(tps.Points); n < 10 {
		t.Errorf("the transactions chart has %q points after pgbench, want at least 10", tps.Points)
	}
	for _, id := range []string{"chart-tps", "chart-query"} {
		if v, _ := strconv.ParseFloat(st.Charts[id].Max, 64); v <= 0 {
			t.Errorf("chart %s shows nothing after pgbench (max %q)", id, st.Charts[id].Max)
		}
	}
	if st.Charts["chart-wait"].Points == "" {
		t.Error("the wait chart was not drawn")
	}
}

// screenshotScene gives the screenshot a second pool with pinned clients
// (an advisory lock, a temporary table) and one waiting behind them.
func screenshotScene(t *testing.T, m *testMux) (release func()) {
	t.Helper()
	ctx := context.Background()
	var conns []*pgx.Conn
	connect := func(app string) *pgx.Conn {
		conn, err := pgx.Connect(ctx, m.dsn("muxuser", "muxpass", "reports")+" application_name="+app)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, conn)
		return conn
	}
	for _, q := range []string{"SELECT pg_advisory_lock(42)", "CREATE TEMP TABLE report_rows (x int)"} {
		if _, err := connect("nightly-report").Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	waiter := connect("dashboard")
	waited := make(chan error, 1)
	go func() {
		_, err := waiter.Exec(ctx, "SELECT 1")
		waited <- err
	}()
	return func() {
		for _, c := range conns[:2] {
			c.Close(ctx)
		}
		if err := <-waited; err != nil {
			t.Errorf("the waiting client's query: %v", err)
		}
		waiter.Close(ctx)
	}
}

// runPgbench runs pgbench through m with each phase's arguments in turn,
// a SELECT 1 script with no tables needed.
func runPgbench(t *testing.T, m *testMux, phases [][]string) error {
	script := filepath.Join(t.TempDir(), "select.sql")
	if err := os.WriteFile(script, []byte("SELECT 1;\n"), 0o644); err != nil {
		return err
	}
	host, port := m.hostPort()
	for _, args := range phases {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		cmd := exec.CommandContext(ctx, cluster.Bin("pgbench"), append([]string{"-n", "-f", script, "-j", "2"}, args...)...)
		cmd.Env = append(os.Environ(), "PGHOST="+host, "PGPORT="+port, "PGUSER=muxuser",
			"PGPASSWORD=muxpass", "PGDATABASE=muxtest", "PGSSLMODE=disable")
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			return fmt.Errorf("pgbench %v: %v\n%s", args, err, out)
		}
	}
	return nil
}

// hostPort returns the address clients connect to, from m's DSN.
func (m *testMux) hostPort() (host, port string) {
	for _, f := range strings.Fields(m.dsn("u", "p", "d")) {
		if v, ok := strings.CutPrefix(f, "host="); ok {
			host = v
		}
		if v, ok := strings.CutPrefix(f, "port="); ok {
			port = v
		}
	}
	return host, port
}

func saveScreenshot(t *testing.T, bctx context.Context, path string) {
	t.Helper()
	png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshot of the page under load saved to %s", path)
}
