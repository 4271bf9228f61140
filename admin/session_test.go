package admin

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/leakcheck"
	"github.com/muxpg/mux/internal/wire"
)

// fakeTarget records the actions the console takes.
type fakeTarget struct {
	cfg   *config.Config
	pools []Pool

	mu      sync.Mutex
	actions []string
	pausing int // PauseComplete answers false this many times
}

func (f *fakeTarget) did(a string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.actions = append(f.actions, a)
}

func (f *fakeTarget) done() string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return strings.Join(f.actions, " ")
}

func (f *fakeTarget) Config() *config.Config              { return f.cfg }
func (f *fakeTarget) Version() string                     { return "test" }
func (f *fakeTarget) Pools() []Pool                       { return f.pools }
func (f *fakeTarget) Clients() []Client                   { return nil }
func (f *fakeTarget) Lists() Lists                        { return Lists{} }
func (f *fakeTarget) FDs() []FD                           { return []FD{{FD: 3, Task: "pooler", Link: -1}} }
func (f *fakeTarget) Hosts() []Host                       { return nil }
func (f *fakeTarget) Mem() Mem                            { return Mem{} }
func (f *fakeTarget) Held(string) (bool, bool)            { return false, false }
func (f *fakeTarget) KnownDatabase(db string) bool        { return db == "app" }
func (f *fakeTarget) Pause(db string)                     { f.did("pause:" + db) }
func (f *fakeTarget) Resume(db string) error              { f.did("resume:" + db); return nil }
func (f *fakeTarget) SetDisabled(db string, b bool)       { f.did("disable:" + db) }
func (f *fakeTarget) Kill(db string)                      { f.did("kill:" + db) }
func (f *fakeTarget) Reconnect(db string)                 { f.did("reconnect:" + db) }
func (f *fakeTarget) CloseNeeded(string) bool             { return false }
func (f *fakeTarget) Reload() error                       { return ErrNotAvailable }
func (f *fakeTarget) Shutdown(string, ShutdownMode) error { return ErrNotAvailable }
func (f *fakeTarget) Set(name, value string) error {
	if name != "default_pool_size" {
		return ErrUnknownSetting
	}
	f.did("set:" + name + "=" + value)
	return nil
}
func (f *fakeTarget) KillClient(id uint64) error {
	f.did("kill_client:" + strconv.FormatUint(id, 16))
	return nil
}
func (f *fakeTarget) Stopping() bool { return false }

func (f *fakeTarget) PauseComplete(string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.pausing--
	return f.pausing < 0
}

// startSession serves one console session for user over a pipe and
// returns the client's end.
func startSession(t *testing.T, ft *fakeTarget, user string) *pgproto3.Frontend {
	t.Helper()
	client, server := net.Pipe()
	con := New(ft)
	peer := Peer{ID: 1, User: user, Database: "pgbouncer", Connected: time.Now(), Conn: server,
		Write:     func(b []byte) error { _, err := server.Write(b); return err },
		SendError: func(e *wire.Error) { _, _ = server.Write(wire.AppendError(nil, e)) },
		Log:       zap.NewNop()}
	served := make(chan struct{})
	go func() { con.Serve(peer); server.Close(); close(served) }()
	t.Cleanup(func() {
		client.Close()
		<-served
		leakcheck.Check(t, 5*time.Second)
	})
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	return pgproto3.NewFrontend(client, client)
}

// reply reads up to ReadyForQuery and describes what came: message types,
// and SQLSTATEs of errors.
func reply(t *testing.T, f *pgproto3.Frontend) string {
	t.Helper()
	var got []string
	for {
		m, err := f.Receive()
		if err != nil {
			t.Fatalf("after %v: %v", got, err)
		}
		switch m := m.(type) {
		case *pgproto3.ErrorResponse:
			got = append(got, "E"+m.Code)
		case *pgproto3.ReadyForQuery:
			return strings.Join(got, " ")
		default:
			got = append(got, typeName(m))
		}
	}
}

func typeName(m pgproto3.BackendMessage) string {
	switch m.(type) {
	case *pgproto3.RowDescription:
		return "T"
	case *pgproto3.DataRow:
		return "D"
	case *pgproto3.CommandComplete:
		return "C"
	case *pgproto3.NoticeResponse:
		return "N"
	}
	return "?"
}

func query(t *testing.T, f *pgproto3.Frontend, q string) string {
	t.Helper()
	f.Send(&pgproto3.Query{String: q})
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	return reply(t, f)
}

func testConfig() *config.Config {
	cfg := config.Default()
	cfg.AdminUsers = []string{"boss"}
	cfg.StatsUsers = []string{"viewer"}
	return cfg
}

// The session answers commands and refusals, each up to ReadyForQuery,
// and goes on after every error.
func TestSessionCommands(t *testing.T) {
	ft := &fakeTarget{cfg: testConfig(), pausing: 3}
	f := startSession(t, ft, "boss")
	for q, want := range map[string]string{
		"SHOW VERSION":                     "T D C",
		"show help;":                       "N C",
		"SHOW NOTHING":                     "E08P01",
		"SHOW FDS":                         "T D C",
		"SHOW SOCKETS":                     "E0A000",
		"pause app":                        "C",
		"pause nosuch":                     "E3D000",
		"pause pgbouncer":                  "E0A000",
		"kill_client":                      "E08P01",
		"SHOW STATE":                       "T D D D C",
		"RELOAD":                           "E0A000",
		"SHUTDOWN":                         "E0A000",
		"SUSPEND":                          "E0A000",
		"select 1":                         "E08P01",
		strings.Repeat("x", maxQueryLen+1): "E54000",
	} {
		if got := query(t, f, q); got != want {
			t.Errorf("%.20q: %q, want %q", q, got, want)
		}
	}
	if got := ft.done(); got != "pause:app reconnect:app" {
		t.Errorf("actions %q", got)
	}
	if got := query(t, f, "KILL_CLIENT 0x2A"); got != "C" || !strings.HasSuffix(ft.done(), " kill_client:2a") {
		t.Errorf("KILL_CLIENT: %q, actions %q", got, ft.done())
	}
	if got := query(t, f, "SET pool_mode = 'session'"); got != "E55P02" {
		t.Errorf("SET pool_mode: %q, want E55P02", got)
	}
	if got := query(t, f, "SET default_pool_size = 7"); got != "C" || !strings.HasSuffix(ft.done(), " set:default_pool_size=7") {
		t.Errorf("SET default_pool_size: %q, actions %q", got, ft.done())
	}

	// The extended protocol gets one error up to the next Sync.
	f.SendParse(&pgproto3.Parse{Query: "SHOW VERSION"})
	f.SendBind(&pgproto3.Bind{})
	f.SendExecute(&pgproto3.Execute{})
	f.SendSync(&pgproto3.Sync{})
	if err := f.Flush(); err != nil {
		t.Fatal(err)
	}
	if got := reply(t, f); got != "E08P01" {
		t.Errorf("extended protocol: %q", got)
	}
	if got := query(t, f, "SHOW VERSION"); got != "T D C" {
		t.Errorf("after the extended protocol: %q", got)
	}
}

// A stats user may only SHOW.
func TestSessionStatsUser(t *testing.T) {
	ft := &fakeTarget{cfg: testConfig()}
	f := startSession(t, ft, "viewer")
	if got := query(t, f, "SHOW LISTS"); !strings.HasPrefix(got, "T D") {
		t.Errorf("SHOW LISTS: %q", got)
	}
	for _, q := range []string{"PAUSE", "KILL app", "RELOAD", "SHUTDOWN"} {
		if got := query(t, f, q); got != "E"+wire.CodeInsufficientPrivilege {
			t.Errorf("%s: %q", q, got)
		}
	}
	if got := ft.done(); got != "" {
		t.Errorf("a stats user's command ran: %q", got)
	}
}
