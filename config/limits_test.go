package config

import (
	"strings"
	"testing"
	"time"
)

// The limit keys default to PgBouncer's values, are read globally, per
// database and per user, and resolve user over database over global.
func TestLimitsDefaultsAndResolution(t *testing.T) {
	c, err := Parse([]byte(minimalDB))
	if err != nil {
		t.Fatal(err)
	}
	want := Limits{ReservePoolTimeout: Duration(5 * time.Second)}
	if c.Limits != want {
		t.Errorf("defaults %+v, want %+v", c.Limits, want)
	}
	doc := `auth_type = "trust"
max_db_connections = 10
max_user_connections = 11
max_db_client_connections = 12
max_user_client_connections = 13
reserve_pool_size = 2
reserve_pool_timeout = "300ms"
[databases.app]
max_db_connections = 3
max_db_client_connections = 4
reserve_pool_size = 0
[databases.other]
[users.alice]
pool_size = 7
reserve_pool_size = 1
max_user_connections = 5
max_user_client_connections = 6
[users.bob]
`
	if c, err = Parse([]byte(doc)); err != nil {
		t.Fatal(err)
	}
	app, _ := c.LookupDatabase("app")
	other, _ := c.LookupDatabase("other")
	got := []int{c.DBServerLimit(app), c.DBServerLimit(other), c.DBClientLimit(app), c.DBClientLimit(other),
		c.UserServerLimit("alice"), c.UserServerLimit("bob"), c.UserClientLimit("alice"), c.UserClientLimit("nobody"),
		c.ReservePoolFor(app, "bob"), c.ReservePoolFor(other, "bob"), c.ReservePoolFor(app, "alice"),
		c.PoolSizeFor(app, "alice"), c.PoolSizeFor(app, "bob")}
	wantInts := []int{3, 10, 4, 12, 5, 11, 6, 13, 0, 2, 1, 7, 20}
	for i := range got {
		if got[i] != wantInts[i] {
			t.Errorf("resolved value %d = %d, want %d (all: %v)", i, got[i], wantInts[i], got)
		}
	}
	c.ReservePoolTimeout = 0
	if n := c.ReservePoolFor(other, "alice"); n != 0 {
		t.Errorf("reserve with reserve_pool_timeout 0: %d, want 0 (off)", n)
	}
}

// Negative limits are refused, each error naming its key.
func TestLimitsValidation(t *testing.T) {
	for _, tc := range []struct{ doc, key string }{
		{"max_db_connections = -1\n" + minimalDB, "max_db_connections:"},
		{"max_user_client_connections = -1\n" + minimalDB, "max_user_client_connections:"},
		{"reserve_pool_size = -1\n" + minimalDB, "reserve_pool_size:"},
		{"reserve_pool_timeout = \"-1s\"\n" + minimalDB, "reserve_pool_timeout:"},
		{minimalDB + "max_db_client_connections = -2\n", "databases.app.max_db_client_connections:"},
		{minimalDB + "reserve_pool_size = -1\n", "databases.app.reserve_pool_size:"},
		{"auth_type = \"trust\"\n" + minimalDB + "[users.u]\npool_size = -1\n", "users.u.pool_size:"},
		{"auth_type = \"trust\"\n" + minimalDB + "[users.u]\nmax_user_connections = -1\n", "users.u.max_user_connections:"},
	} {
		_, err := Parse([]byte(tc.doc))
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: %v, want an error naming %s", tc.doc, err, tc.key)
		}
	}
}
