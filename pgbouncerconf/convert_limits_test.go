package pgbouncerconf

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/userlist"
)

func ptr[T any](v T) *T { return &v }

// Every connection limit and the reserve pool is carried, globally, per
// database and per user, and none is noted as not carried over.
func TestConvertLimits(t *testing.T) {
	ini := `[databases]
app = host=db max_db_connections=7 max_db_client_connections=70 reserve_pool_size=0
old = host=db reserve_pool=3
plain = host=db
[users]
alice = pool_size=4 reserve_pool_size=2 max_user_connections=5 max_user_client_connections=50
bob = pool_size=0 max_user_connections=-1
[pgbouncer]
listen_addr = 127.0.0.1
max_db_connections = 10
max_user_connections = 11
max_db_client_connections = 100
max_user_client_connections = 110
reserve_pool_size = 2
reserve_pool_timeout = 0.25
`
	res, c := convertText(t, ini, []userlist.Entry{{User: "alice", Secret: "a-pw"}, {User: "bob", Secret: "b-pw"}})
	wantGlobal := config.Limits{MaxDBConnections: 10, MaxUserConnections: 11, MaxDBClientConnections: 100,
		MaxUserClientConnections: 110, ReservePoolSize: 2, ReservePoolTimeout: config.Duration(250 * time.Millisecond)}
	if c.Limits != wantGlobal {
		t.Errorf("global limits %+v, want %+v", c.Limits, wantGlobal)
	}
	wantDB := map[string]config.DatabaseLimits{
		"app":   {MaxDBConnections: 7, MaxDBClientConnections: 70, ReservePoolSize: ptr(0)},
		"old":   {ReservePoolSize: ptr(3)},
		"plain": {},
	}
	for name, want := range wantDB {
		if got := c.Databases[name].DatabaseLimits; !reflect.DeepEqual(got, want) {
			t.Errorf("databases.%s limits %+v, want %+v", name, got, want)
		}
	}
	wantUser := map[string]config.UserLimits{
		"alice": {PoolSize: 4, ReservePoolSize: ptr(2), MaxUserConnections: 5, MaxUserClientConnections: 50},
		"bob":   {},
	}
	for name, want := range wantUser {
		if got := c.Users[name].UserLimits; !reflect.DeepEqual(got, want) {
			t.Errorf("users.%s limits %+v, want %+v", name, got, want)
		}
	}
	// Only what mux cannot express is noted (not dropped silently).
	if len(res.Notes) != 2 {
		t.Errorf("%d notes, want 2 (bob's):\n%s", len(res.Notes), strings.Join(res.Notes, "\n"))
	}
	for _, n := range []string{"users.bob (pgbouncer.ini:7): pool_size=0", `users.bob (pgbouncer.ini:7): max_user_connections="-1": negative`} {
		if !noteWith(res.Notes, n) {
			t.Errorf("no note contains %q; notes:\n%s", n, strings.Join(res.Notes, "\n"))
		}
	}
	// The resolved values are PgBouncer's.
	app, _ := c.LookupDatabase("app")
	plain, _ := c.LookupDatabase("plain")
	if got := []int{c.DBServerLimit(app), c.DBServerLimit(plain), c.ReservePoolFor(app, "bob"), c.ReservePoolFor(plain, "alice"),
		c.ReservePoolFor(plain, "bob"), c.PoolSizeFor(plain, "alice"), c.PoolSizeFor(plain, "bob"), c.UserServerLimit("bob")}; !reflect.DeepEqual(got, []int{7, 10, 0, 2, 2, 4, 20, 11}) {
		t.Errorf("resolved limits %v", got)
	}
}

// A limit that is not a number fails the import, as it would PgBouncer's
// configuration check.
func TestConvertLimitsInvalid(t *testing.T) {
	for _, ini := range []string{
		"[databases]\napp = host=db max_db_connections=many\n[pgbouncer]\nlisten_addr = 127.0.0.1\n",
		"[databases]\napp = host=db\n[users]\nalice = reserve_pool_size=x\n[pgbouncer]\nlisten_addr = 127.0.0.1\n",
		base + "reserve_pool_size = -1\n",
	} {
		parsed, err := ParseINI(strings.NewReader(ini), "pgbouncer.ini")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Convert(parsed, []userlist.Entry{{User: "alice", Secret: "pw"}}); err == nil {
			t.Errorf("Convert accepted %q", ini)
		}
	}
}
