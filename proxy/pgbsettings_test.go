package proxy

import (
	"context"
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
