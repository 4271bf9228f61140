package config

import (
	"strings"
	"testing"
	"time"
)

func TestHostsParse(t *testing.T) {
	c := mustParse(t, `
host_check_interval = "500ms"
[databases.app]
hosts = [{host = "10.0.0.1", port = 5433, role = "primary"}, {host = "10.0.0.2"}]
[databases.app_ro]
hosts = [{host = "10.0.0.1"}, {host = "10.0.0.2", role = "replica"}]
target_session_attrs = "standby"
load_balance_hosts = "least-busy"
fallback_to_primary = false
[databases.plain]
host = "db"
`)
	app := c.Databases["app"]
	if app.Host != "" || app.Port != 0 || !app.Routed() || app.EffectiveTSA() != TSAReadWrite ||
		app.EffectiveBalance() != BalanceRoundRobin || !app.Fallback() {
		t.Errorf("app = %+v", app)
	}
	hl := app.HostList()
	if len(hl) != 2 || hl[0] != (HostSpec{"10.0.0.1", 5433, RolePrimary}) || hl[1] != (HostSpec{"10.0.0.2", 5432, RoleAuto}) {
		t.Errorf("app hosts = %+v", hl)
	}
	ro := c.Databases["app_ro"]
	if ro.EffectiveTSA() != TSAStandby || ro.EffectiveBalance() != BalanceLeastBusy || ro.Fallback() {
		t.Errorf("app_ro = %+v", ro)
	}
	plain := c.Databases["plain"]
	if plain.Routed() || plain.EffectiveTSA() != TSAAny || plain.Port != DefaultPort {
		t.Errorf("plain = %+v", plain)
	}
	if c.HostCheckInterval.D() != 500*time.Millisecond || c.HostRetryMax.D() != DefaultHostRetryMax {
		t.Errorf("host checks = %+v", c.HostChecks)
	}
	if c.MaxReplicaLag.D() != DefaultMaxReplicaLag || app.ReplicaLagLimit(c.MaxReplicaLag).D() != DefaultMaxReplicaLag {
		t.Errorf("max_replica_lag = %v, app's %v", c.MaxReplicaLag, app.ReplicaLagLimit(c.MaxReplicaLag))
	}
	own := mustParse(t, "max_replica_lag = \"3s\"\n[databases.a]\nhosts = [{host = \"x\"}, {host = \"y\"}]\nmax_replica_lag = \"0s\"\n")
	if got := own.Databases["a"].ReplicaLagLimit(own.MaxReplicaLag); got != 0 || own.MaxReplicaLag.D() != 3*time.Second {
		t.Errorf("an entry's max_replica_lag = %v (global %v), want 0s (3s)", got, own.MaxReplicaLag)
	}
}

func TestHostsValidation(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"both", "[databases.a]\nhost = \"x\"\nhosts = [{host = \"y\"}]\n",
			`databases.a.hosts: set either host/port or hosts, not both`},
		{"empty host", "[databases.a]\nhosts = [{host = \"y\"}, {port = 5432}]\n",
			`databases.a.hosts.2.host: must not be empty`},
		{"bad port", "[databases.a]\nhosts = [{host = \"y\", port = 70000}]\n",
			`databases.a.hosts.1.port: 70000 is out of range 1..65535`},
		{"bad role", "[databases.a]\nhosts = [{host = \"y\", role = \"leader\"}]\n",
			`databases.a.hosts.1.role: "leader" is not one of primary, replica, auto`},
		{"duplicate", "[databases.a]\nhosts = [{host = \"y\"}, {host = \"y\", port = 5432}]\n",
			`databases.a.hosts.2: host y:5432 is already listed as host 1`},
		{"two primaries", "[databases.a]\nhosts = [{host = \"x\", role = \"primary\"}, {host = \"y\", role = \"primary\"}]\n",
			`databases.a.hosts: 2 hosts have role "primary"; at most one may (mux never writes to two primaries: use "auto" to let the servers say)`},
		{"standby without replica", "[databases.a]\nhosts = [{host = \"x\", role = \"primary\"}]\ntarget_session_attrs = \"standby\"\n",
			`databases.a.target_session_attrs: "standby" needs a host of role replica or auto, but every host is a primary`},
		{"read-write without primary", "[databases.a]\nhosts = [{host = \"x\", role = \"replica\"}, {host = \"y\", role = \"replica\"}]\n",
			`databases.a.target_session_attrs: "read-write" needs a host of role primary or auto, but every host is a replica`},
		{"bad tsa", "[databases.a]\ntarget_session_attrs = \"readwrite\"\n",
			`databases.a.target_session_attrs: "readwrite" is not one of any, read-write, read-only, primary, standby, prefer-standby`},
		{"bad balance", "[databases.a]\nload_balance_hosts = \"random\"\n",
			`databases.a.load_balance_hosts: "random" is not one of round-robin, least-busy, disable`},
		{"unknown host key", "[databases.a]\nhosts = [{host = \"y\", rol = \"auto\"}]\n",
			`unknown key "databases.a.hosts.rol"; did you mean "role"?`},
		{"interval", "host_check_interval = \"0s\"\n[databases.a]\n",
			`host_check_interval: must be positive`},
		{"retry max", "host_retry_max = \"100ms\"\n[databases.a]\n",
			`host_retry_max: 100ms is less than host_check_interval 1s`},
		{"split one host", "[databases.a]\nhost = \"x\"\ntarget_session_attrs = \"read-write\"\nread_write_split = true\n",
			`databases.a.read_write_split: needs a hosts list with a host that may be the primary and another that may be a replica (role primary, replica or auto)`},
		{"split no replica", "[databases.a]\nhosts = [{host = \"x\", role = \"primary\"}, {host = \"y\", role = \"primary\"}]\nread_write_split = true\n",
			`databases.a.read_write_split: needs a hosts list with a host that may be the primary and another that may be a replica (role primary, replica or auto)`},
		{"split session", "[databases.a]\nhosts = [{host = \"x\"}, {host = \"y\"}]\npool_mode = \"session\"\nread_write_split = true\n",
			`databases.a.read_write_split: needs pool_mode "transaction" (each transaction picks its host), but this entry's pool mode is "session"`},
		{"negative lag", "max_replica_lag = \"-1s\"\n[databases.a]\n",
			`max_replica_lag: must not be negative (0 turns the limit off)`},
		{"negative entry lag", "[databases.a]\nhosts = [{host = \"x\"}, {host = \"y\"}]\nmax_replica_lag = \"-1s\"\n",
			`databases.a.max_replica_lag: must not be negative (0 turns the limit off)`},
		{"split standby", "[databases.a]\nhosts = [{host = \"x\"}, {host = \"y\"}]\ntarget_session_attrs = \"standby\"\nread_write_split = true\n",
			`databases.a.read_write_split: sends writes through the entry's own routing, so target_session_attrs must be "read-write" or "primary", not "standby"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { parseFailsWithLine(t, tt.doc, tt.want) })
	}
	if _, err := Parse([]byte("[databases.a]\nhosts = [{host = \"x\", role = \"primary\"}]\ntarget_session_attrs = \"prefer-standby\"\n")); err != nil &&
		strings.Contains(err.Error(), "target_session_attrs") {
		t.Errorf("prefer-standby with only a primary refused: %v", err)
	}
}
