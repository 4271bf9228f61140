package metrics

import (
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
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
