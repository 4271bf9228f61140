package pgbouncerconf

import (
	"strings"
	"testing"
	"time"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/userlist"
)

// PgBouncer 1.25's reuse and timeout settings are carried, globally, per
// database and per user, with no note.
func TestConvertReuseSettings(t *testing.T) {
	ini := `[databases]
app = host=db server_lifetime=120 connect_query='SET search_path = app' query_wait_timeout=0
other = host=db server_lifetime=0 query_wait_timeout=-1
[users]
alice = query_timeout=5 idle_transaction_timeout=6 transaction_timeout=7 client_idle_timeout=8 pool_mode=session
bob = query_timeout=0 query_wait_timeout=30
[pgbouncer]
listen_addr = 127.0.0.1
server_round_robin = 1
server_fast_close = 1
transaction_timeout = 30
cancel_wait_timeout = 2.5
`
	res, c := convertText(t, ini, []userlist.Entry{{User: "alice", Secret: "a"}, {User: "bob", Secret: "b"}})
	for _, n := range res.Notes {
		for _, key := range []string{"round_robin", "fast_close", "transaction_timeout", "cancel_wait", "server_lifetime", "query_wait_timeout", "connect_query", "query_timeout", "client_idle"} {
			if strings.Contains(n, key) {
				t.Errorf("note about a carried setting: %s", n)
			}
		}
	}
	sec := func(f float64) config.Duration { return config.Duration(f * float64(time.Second)) }
	if !c.ServerRoundRobin || !c.ServerFastClose || c.TransactionTimeout != sec(30) || c.CancelWaitTimeout != sec(2.5) {
		t.Errorf("globals %+v", c.ServerReuse)
	}
	if db := c.Databases["app"]; db.ServerLifetime != sec(120) || db.ConnectQuery != "SET search_path = app" ||
		db.QueryWaitTimeout == nil || *db.QueryWaitTimeout != 0 {
		t.Errorf("app %+v", db.DatabaseServer)
	}
	if db := c.Databases["other"]; db.ServerLifetime != 0 || db.QueryWaitTimeout != nil {
		t.Errorf("other's server_lifetime=0 (not set in PgBouncer) became %v", db.ServerLifetime)
	}
	want := config.UserTimeouts{QueryTimeout: sec(5), IdleTransactionTimeout: sec(6), TransactionTimeout: sec(7), ClientIdleTimeout: sec(8)}
	if u := c.Users["alice"]; u.UserTimeouts != want || u.PoolMode != "session" {
		t.Errorf("alice %+v", u)
	}
	if u := c.Users["bob"]; u.QueryWaitTimeout == nil || *u.QueryWaitTimeout != sec(30) {
		t.Errorf("bob %+v", u)
	}
	// Defaults: PgBouncer's.
	_, c = convertText(t, base, nil)
	if c.ServerRoundRobin || c.ServerFastClose || c.TransactionTimeout != 0 || c.CancelWaitTimeout != sec(10) {
		t.Errorf("defaults %+v", c.ServerReuse)
	}
}

func TestConvertReuseSettingsBadValues(t *testing.T) {
	for _, ini := range []string{
		"[databases]\napp = host=db server_lifetime=soon\n[pgbouncer]\n",
		"[databases]\napp = host=db\n[users]\nalice = query_timeout=-1\n[pgbouncer]\n",
		base + "transaction_timeout = x\n",
		base + "server_round_robin = maybe\n",
	} {
		parsed, err := ParseINI(strings.NewReader(ini), "pgbouncer.ini")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Convert(parsed, []userlist.Entry{{User: "alice", Secret: "a"}}); err == nil {
			t.Errorf("accepted:\n%s", ini)
		}
	}
}
