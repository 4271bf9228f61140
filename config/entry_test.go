package config

import (
	"strings"
	"testing"
	"time"
)

func TestServerReuseSettings(t *testing.T) {
	c, err := Parse([]byte(minimalDB))
	if err != nil {
		t.Fatal(err)
	}
	if c.TransactionTimeout != 0 || c.CancelWaitTimeout.D() != 10*time.Second || c.ServerRoundRobin || c.ServerFastClose {
		t.Errorf("defaults: %+v", c.ServerReuse)
	}
	doc := `transaction_timeout = "3s"
cancel_wait_timeout = "2s"
server_round_robin = true
server_fast_close = true
query_timeout = "9s"
client_idle_timeout = "1m"

[databases.app]
server_lifetime = "30s"
connect_query = "SET application_name = 'x'"

[databases.other]

[users.u]
password = "p"
query_timeout = "1s"
transaction_timeout = "4s"
`
	if c, err = Parse([]byte(doc)); err != nil {
		t.Fatal(err)
	}
	if c.TransactionTimeout.D() != 3*time.Second || c.CancelWaitTimeout.D() != 2*time.Second || !c.ServerRoundRobin || !c.ServerFastClose {
		t.Errorf("values: %+v", c.ServerReuse)
	}
	if db := c.Databases["app"]; db.ConnectQuery != "SET application_name = 'x'" || c.ServerLifetimeFor(db) != 30*time.Second {
		t.Errorf("app: %+v", db.DatabaseServer)
	}
	if got := c.ServerLifetimeFor(c.Databases["other"]); got != time.Hour {
		t.Errorf("other's server_lifetime %v, want the global 1h", got)
	}
	// The user's own override the global ones; unset ones are the global.
	got := c.Resolved(c.Users["u"].UserTimeouts)
	want := UserTimeouts{QueryTimeout: Duration(time.Second), TransactionTimeout: Duration(4 * time.Second),
		ClientIdleTimeout: Duration(time.Minute)}
	if got != want {
		t.Errorf("u's timeouts %+v, want %+v", got, want)
	}
	if got := c.Resolved(UserTimeouts{}); got.QueryTimeout.D() != 9*time.Second || got.TransactionTimeout.D() != 3*time.Second {
		t.Errorf("global timeouts %+v", got)
	}
}

func TestServerReuseValidation(t *testing.T) {
	doc := `transaction_timeout = "-1s"
cancel_wait_timeout = "-2s"

[databases.app]
server_lifetime = "-1s"
connect_query = "SELECT 1\u0000"

[users.u]
password = "p"
idle_transaction_timeout = "-1s"
client_idle_timeout = "-1s"
`
	_, err := Parse([]byte(doc))
	if err == nil {
		t.Fatal("negative durations accepted")
	}
	for _, key := range []string{"transaction_timeout", "cancel_wait_timeout", "databases.app.server_lifetime",
		"databases.app.connect_query", "users.u.idle_transaction_timeout", "users.u.client_idle_timeout"} {
		if !strings.Contains(err.Error(), key+":") {
			t.Errorf("no error names %s:\n%v", key, err)
		}
	}
}

// query_wait_timeout: the user's, else the database's, else the global
// one; present, "0s" counts (wait forever).
func TestQueryWaitTimeoutFor(t *testing.T) {
	c := mustParse(t, `query_wait_timeout = "1m"
[databases.app]
query_wait_timeout = "0s"
[databases."*"]
query_wait_timeout = "5s"
[databases.plain]
[users.u]
password = "p"
query_wait_timeout = "7s"
[users.v]
password = "p"
`)
	for _, tc := range []struct {
		db, user string
		want     time.Duration
	}{
		{"app", "u", 7 * time.Second},
		{"app", "v", 0},
		{"elsewhere", "v", 5 * time.Second},
		{"plain", "v", time.Minute},
		{"plain", "nobody", time.Minute},
	} {
		if got := c.QueryWaitTimeoutFor(tc.db, tc.user); got != tc.want {
			t.Errorf("%s/%s: %v, want %v", tc.db, tc.user, got, tc.want)
		}
	}
	if _, err := Parse([]byte("[databases.app]\nquery_wait_timeout = \"-1s\"\n[users.u]\npassword = \"p\"\nquery_wait_timeout = \"-1s\"\n")); err == nil ||
		!strings.Contains(err.Error(), "databases.app.query_wait_timeout:") || !strings.Contains(err.Error(), "users.u.query_wait_timeout:") {
		t.Errorf("negative query_wait_timeout: %v", err)
	}
}
