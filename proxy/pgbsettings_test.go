package proxy

import (
	"context"
	"fmt"
	"net"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/muxpg/mux/pool"
	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"
)

// observedMux starts a mux whose log is recorded from debug level up.
func observedMux(t *testing.T, top string) (*testMux, *observer.ObservedLogs) {
	core, logs := observer.New(zapcore.DebugLevel)
	return startMuxLog(t, top, zap.New(core)), logs
}

// lastEntry waits for a log entry with message msg and returns it.
func lastEntry(t *testing.T, logs *observer.ObservedLogs, msg string) observer.LoggedEntry {
	t.Helper()
	var found []observer.LoggedEntry
	waitFor(t, msg, 5*time.Second, func() bool {
		found = logs.FilterMessage(msg).All()
		return len(found) > 0
	})
	return found[len(found)-1]
}

// log_connections and log_disconnections log a login and a disconnect
// with its reason at info level; off, at debug level only.
func TestLogConnectionsAndDisconnections(t *testing.T) {
	for _, on := range []bool{true, false} {
		name := map[bool]string{true: "on", false: "off"}[on]
		t.Run(name, func(t *testing.T) {
			top := "log_connections = false\nlog_disconnections = false"
			want := zapcore.DebugLevel
			if on {
				top, want = "", zapcore.InfoLevel
			}
			m, logs := observedMux(t, top)
			conn := m.connect(t)
			queryString(t, conn, "SELECT 1")
			in := lastEntry(t, logs, "client logged in")
			conn.Close(context.Background())
			out := lastEntry(t, logs, "client disconnected")
			if in.Level != want || out.Level != want {
				t.Errorf("logged in at %v, disconnected at %v; want %v", in.Level, out.Level, want)
			}
			if f := out.ContextMap(); f["reason"] != reasonClientClose {
				t.Errorf("disconnect fields %v", f)
			}
			if !on {
				return
			}
			f := in.ContextMap()
			if f["user"] != "muxuser" || f["database"] != "muxtest" || f["remote"] == nil {
				t.Errorf("login fields %v", f)
			}
			for _, e := range logs.All() {
				for k, v := range e.ContextMap() {
					if s, ok := v.(string); ok && strings.Contains(s, "muxpass") {
						t.Errorf("%q logs a secret in %s", e.Message, k)
					}
				}
			}
		})
	}
}

// tcp_user_timeout is set on every accepted client socket.
func TestTCPUserTimeoutOnClientSockets(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP_USER_TIMEOUT is Linux's")
	}
	m := startMux(t, `tcp_user_timeout = "4s"`)
	queryString(t, m.connect(t), "SELECT 1")
	m.p.keysMu.Lock()
	defer m.p.keysMu.Unlock()
	if len(m.p.conns) == 0 {
		t.Fatal("no accepted connection")
	}
	for conn := range m.p.conns {
		if got := pool.UserTimeout(conn); got != 4*time.Second {
			t.Errorf("client socket TCP_USER_TIMEOUT %v, want 4s", got)
		}
	}
}

// application_name_add_host appends " - HOST:PORT" to the application_name
// a client logs in with ("app" if none), on whichever server it is given;
// a later SET is the client's own.
func TestApplicationNameAddHost(t *testing.T) {
	t.Run("on", testApplicationNameAddHostOn)
	t.Run("off", func(t *testing.T) {
		m := startMux(t, "")
		if got := queryString(t, m.connect(t, "application_name=myapp"), "SHOW application_name"); got != "myapp" {
			t.Errorf("off: %q", got)
		}
	})
}

func testApplicationNameAddHostOn(t *testing.T) {
	m := startMux(t, "application_name_add_host = true\ndefault_pool_size = 1")
	for _, tt := range []struct{ extra, app string }{{"application_name=myapp", "myapp"}, {"", "app"}} {
		var extra []string
		if tt.extra != "" {
			extra = append(extra, tt.extra)
		}
		conn := m.connect(t, extra...)
		want := tt.app + " - " + conn.PgConn().Conn().LocalAddr().String()
		if got := queryString(t, conn, "SHOW application_name"); got != want {
			t.Errorf("server application_name %q, want %q", got, want)
		}
		if got := conn.PgConn().ParameterStatus("application_name"); got != want {
			t.Errorf("reported application_name %q, want %q", got, want)
		}
		if _, err := conn.Exec(context.Background(), "SET application_name = 'mine'"); err != nil {
			t.Fatal(err)
		}
		if got := queryString(t, conn, "SHOW application_name"); got != "mine" {
			t.Errorf("after SET: %q", got)
		}
		conn.Close(context.Background())
	}
}

func TestClientHostFormat(t *testing.T) {
	for _, tt := range []struct {
		local, remote net.Addr
		want          string
	}{
		{nil, &net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5000}, "10.0.0.1:5000"},
		{nil, &net.TCPAddr{IP: net.ParseIP("::1"), Port: 5000}, "[::1]:5000"},
		{&net.UnixAddr{Name: "/tmp/.s.PGSQL.6432", Net: "unix"}, &net.UnixAddr{Net: "unix"}, "unix:6432"},
	} {
		if got := clientHost(tt.local, tt.remote); got != tt.want {
			t.Errorf("clientHost(%v) = %q, want %q", tt.remote, got, tt.want)
		}
	}
}

// log_stats logs each database's averages every stats_period; off, nothing.
func TestLogStats(t *testing.T) {
	t.Run("on", func(t *testing.T) {
		m, logs := observedMux(t, `stats_period = "1s"`)
		conn := m.connect(t)
		var f map[string]any
		waitFor(t, "a stats line with queries", 10*time.Second, func() bool {
			queryString(t, conn, "SELECT 1") // keep queries coming while the period runs
			for _, e := range logs.FilterMessage("stats").All() {
				if f = e.ContextMap(); f["database"] == "muxtest" && f["avg_query_count"].(int64) > 0 {
					return true
				}
			}
			return false
		})
		if _, ok := f["avg_wait_time"]; !ok || f["avg_recv"].(int64) <= 0 {
			t.Errorf("stats fields %v", f)
		}
	})
	t.Run("off", func(t *testing.T) {
		m, logs := observedMux(t, "log_stats = false\nstats_period = \"1s\"")
		queryString(t, m.connect(t), "SELECT 1")
		time.Sleep(2500 * time.Millisecond)
		if n := logs.FilterMessage("stats").Len(); n != 0 {
			t.Errorf("%d stats lines with log_stats off", n)
		}
	})
}

// log_pooler_errors logs each error mux sends a client it closes; off, it
// does not.
func TestLogPoolerErrors(t *testing.T) {
	for _, on := range []bool{true, false} {
		t.Run(map[bool]string{true: "on", false: "off"}[on], func(t *testing.T) {
			m, logs := observedMux(t, fmt.Sprintf("log_pooler_errors = %v", on))
			if got := connectErr(t, m.dsn("muxuser", "muxpass", "pgbouncer_nonexistent_db_x")); got == "" {
				t.Fatal("login to an unknown database succeeded")
			}
			time.Sleep(200 * time.Millisecond)
			found := logs.FilterMessage("pooler error").All()
			switch {
			case on && len(found) == 0:
				t.Fatal("no pooler error logged")
			case on:
				if f := found[0].ContextMap(); found[0].Level != zapcore.WarnLevel || f["sqlstate"] == "" || f["message"] == "" {
					t.Errorf("logged %v %v", found[0].Level, f)
				}
			case len(found) > 0:
				t.Errorf("log_pooler_errors off, logged %v", found[0].ContextMap())
			}
		})
	}
}
