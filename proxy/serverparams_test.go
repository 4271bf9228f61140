package proxy

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// A database entry's timezone, datestyle and client_encoding are the
// startup parameters of its servers: what a client that sets none sees.
// A client's own SET still wins for it, and only for it.
func TestDatabaseServerParameters(t *testing.T) {
	m := startMux(t, fmt.Sprintf(`
[databases.tzdb]
host = %q
port = %d
dbname = "muxtest"
timezone = "Pacific/Auckland"
datestyle = "SQL, DMY"
application_name = "from-entry"
`, cluster.Host, cluster.Port))
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a := m.connectAs(t, "muxuser", "muxpass", "tzdb")
	b := m.connectAs(t, "muxuser", "muxpass", "tzdb")
	for _, c := range []struct{ q, want string }{
		{"SHOW TimeZone", "Pacific/Auckland"},
		{"SHOW DateStyle", "SQL, DMY"},
		{"SELECT current_setting('application_name')", "from-entry"},
	} {
		if got := queryString(t, a, c.q); got != c.want {
			t.Errorf("%s = %q, want %q", c.q, got, c.want)
		}
	}
	if _, err := a.Exec(ctx, "SET TimeZone = 'UTC'"); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if got := queryString(t, a, "SHOW TimeZone"); got != "UTC" {
			t.Errorf("after SET: TimeZone %q, want UTC", got)
		}
		if got := queryString(t, b, "SHOW TimeZone"); got != "Pacific/Auckland" {
			t.Errorf("the other client: TimeZone %q, want the entry's", got)
		}
	}
	// The entry's parameters go to its servers only.
	other := m.connect(t)
	if got := queryString(t, other, "SHOW TimeZone"); got == "Pacific/Auckland" {
		t.Error("a client of another entry got tzdb's TimeZone")
	}
}
