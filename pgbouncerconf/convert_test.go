package pgbouncerconf

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/muxpg/mux/auth"
	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/userlist"
)

// convertText parses ini, converts it and checks that mux accepts the result
// and that every note is in it.
func convertText(t *testing.T, ini string, entries []userlist.Entry) (*Result, *config.Config) {
	t.Helper()
	parsed, err := ParseINI(strings.NewReader(ini), "pgbouncer.ini")
	if err != nil {
		t.Fatalf("ParseINI: %v", err)
	}
	return convertINI(t, parsed, entries)
}

func convertINI(t *testing.T, ini *INI, entries []userlist.Entry) (*Result, *config.Config) {
	t.Helper()
	res, err := Convert(ini, entries)
	if err != nil {
		t.Fatalf("Convert: %v", err)
	}
	cfg, err := config.Parse(res.TOML)
	if err != nil {
		t.Fatalf("config.Parse rejects the converted config:\n%s\nerror: %v", res.TOML, err)
	}
	for _, n := range res.Notes {
		if !bytes.Contains(res.TOML, []byte("\n# NOT CARRIED OVER: "+commentText(n)+"\n")) {
			t.Errorf("note %q is not in the TOML:\n%s", n, res.TOML)
		}
	}
	return res, cfg
}

func noteWith(notes []string, sub string) bool {
	return slices.ContainsFunc(notes, func(n string) bool { return strings.Contains(n, sub) })
}

// base is a minimal valid PgBouncer file; tests append settings to its
// [pgbouncer] section, where later lines win.
const base = "[databases]\napp = host=db.internal\n[pgbouncer]\nlisten_addr = 127.0.0.1\n"

func TestConvertDefaults(t *testing.T) {
	res, c := convertText(t, base, []userlist.Entry{{User: "alice", Secret: "alice-pw"}})
	if len(res.Notes) != 0 {
		t.Errorf("unexpected notes: %q", res.Notes)
	}
	sec := func(n int) config.Duration { return config.Duration(time.Duration(n) * time.Second) }
	checks := []struct {
		name      string
		got, want any
	}{
		// PgBouncer's defaults where they differ from mux's.
		{"listen", c.Listen, []string{"127.0.0.1:6432"}},
		{"unix_socket_dir", c.UnixSocketDir, "/tmp"},
		{"max_client_conn", c.MaxClientConn, 100},
		{"auth_type", c.AuthType, "md5"},
		{"pool_mode", c.PoolMode, "session"},
		{"server_lifetime", c.ServerLifetime, sec(3600)},
		{"server_login_retry", c.ServerLoginRetry, sec(15)},
		{"server_tls_sslmode", c.ServerTLSSSLMode, "prefer"},
		{"max_message_size", c.MaxMessageSize, config.GiB},
		// And where they agree.
		{"unix_socket_mode", c.UnixSocketMode, "0777"},
		{"default_pool_size", c.DefaultPoolSize, 20},
		{"min_pool_size", c.MinPoolSize, 0},
		{"server_reset_query", c.ServerResetQuery, "DISCARD ALL"},
		{"server_check_delay", c.ServerCheckDelay, sec(30)},
		{"server_check_query", c.ServerCheckQuery, "select 1"},
		{"server_idle_timeout", c.ServerIdleTimeout, sec(600)},
		{"autodb_idle_timeout", c.AutodbIdleTimeout, sec(3600)},
		{"server_connect_timeout", c.ServerConnectTimeout, sec(15)},
		{"query_wait_timeout", c.QueryWaitTimeout, sec(120)},
		{"query_wait_notify", c.QueryWaitNotify, sec(5)},
		{"query_timeout", c.QueryTimeout, sec(0)},
		{"client_login_timeout", c.ClientLoginTimeout, sec(60)},
		{"client_idle_timeout", c.ClientIdleTimeout, sec(0)},
		{"idle_transaction_timeout", c.IdleTransactionTimeout, sec(0)},
		{"tcp_keepalive", c.TCPKeepalive, true},
		{"tcp_keepidle", c.TCPKeepIdle, sec(0)},
		{"tcp_keepintvl", c.TCPKeepIntvl, sec(0)},
		{"tcp_keepcnt", c.TCPKeepCnt, 0},
		{"ignore_startup_parameters", c.IgnoreStartupParameters, []string{}},
		{"max_prepared_statements", c.MaxPreparedStatements, 200},
		{"admin_users", c.AdminUsers, []string{}},
		{"stats_users", c.StatsUsers, []string{}},
		{"client_tls_sslmode", c.ClientTLSSSLMode, "disable"},
		{"client_tls_min_version", c.ClientTLSMinVersion, "tlsv1.2"},
		{"server_tls_min_version", c.ServerTLSMinVersion, "tlsv1.2"},
		{"log_level", c.LogLevel, "info"},
		// mux-only settings keep mux's defaults.
		{"client_write_timeout", c.ClientWriteTimeout, config.Default().ClientWriteTimeout},
		{"shutdown_timeout", c.ShutdownTimeout, config.Default().ShutdownTimeout},
		{"http_listen", c.HTTPListen, config.Default().HTTPListen},
		{"databases", c.Databases, map[string]config.Database{"app": {Host: "db.internal", Port: 5432, MinPoolSize: config.InheritMinPoolSize}}},
		{"users", c.Users, map[string]config.User{"alice": {Password: "alice-pw"}}},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %#v, want %#v", ck.name, ck.got, ck.want)
		}
	}
	// Every setting is written out explicitly, so mux's defaults never apply.
	toml := string(res.TOML)
	for _, key := range []string{"listen", "unix_socket_dir", "max_client_conn", "auth_type", "pool_mode",
		"default_pool_size", "server_lifetime", "server_login_retry", "server_tls_sslmode", "max_message_size",
		"log_level", "tcp_keepalive", "max_prepared_statements"} {
		if !strings.Contains(toml, "\n"+key+" = ") {
			t.Errorf("%s is not written out", key)
		}
	}
}

func TestConvertSettings(t *testing.T) {
	dir := t.TempDir()
	for _, f := range []string{"key.pem", "cert.pem", "ca.pem"} {
		writeFile(t, filepath.Join(dir, f), "placeholder\n")
	}
	sec := func(f float64) config.Duration { return config.Duration(time.Duration(f * float64(time.Second))) }
	tests := []struct {
		name     string
		settings string
		check    func(c *config.Config) any // returns the value compared with want
		want     any
		note     string // a substring of an expected note; "" expects none
	}{
		{"listen wildcard", "listen_addr = *\nlisten_port = 7432\n", func(c *config.Config) any { return c.Listen }, []string{"0.0.0.0:7432"}, ""},
		{"listen list", "listen_addr = 10.1.1.1, ::1 ,[fe80::1], db.local,10.1.1.1\n",
			func(c *config.Config) any { return c.Listen },
			[]string{"10.1.1.1:6432", "[::1]:6432", "[fe80::1]:6432", "db.local:6432"}, ""},
		{"listen unix only", "listen_addr =\nunix_socket_dir = /run/pgb\n",
			func(c *config.Config) any { return []any{c.Listen, c.UnixSocketPath()} }, []any{[]string{}, "/run/pgb/.s.PGSQL.6432"}, ""},
		{"listen unix only, other port", "listen_addr =\nlisten_port = 6000\n",
			func(c *config.Config) any { return c.Listen }, []string{}, "mux names its Unix socket .s.PGSQL.6432"},
		{"abstract socket", "unix_socket_dir = @pgb\n", func(c *config.Config) any { return c.UnixSocketDir }, "", "abstract-namespace"},
		{"socket mode", "unix_socket_mode = 0750\n", func(c *config.Config) any { return c.UnixSocketMode }, "0750", ""},
		{"socket mode decimal", "unix_socket_mode = 448\n", func(c *config.Config) any { return c.UnixSocketMode }, "0700", ""},
		{"socket mode sticky", "unix_socket_mode = 01777\n", func(c *config.Config) any { return c.UnixSocketMode }, "0777", "setuid, setgid or sticky"},
		{"max_client_conn", "max_client_conn = 5000\n", func(c *config.Config) any { return c.MaxClientConn }, 5000, ""},
		{"auth trust", "auth_type = trust\n", func(c *config.Config) any { return c.AuthType }, "trust", ""},
		{"auth scram", "auth_type = SCRAM-SHA-256\n", func(c *config.Config) any { return c.AuthType }, "scram-sha-256", ""},
		{"auth plain", "auth_type = plain\n", func(c *config.Config) any { return c.AuthType }, "scram-sha-256", "does not accept clear-text passwords"},
		{"auth any", "auth_type = any\n", func(c *config.Config) any { return c.AuthType }, "trust", "mux has no \"any\""},
		{"pool_mode", "pool_mode = Transaction\n", func(c *config.Config) any { return c.PoolMode }, "transaction", ""},
		{"pool sizes", "default_pool_size = 50\nmin_pool_size = 10\n",
			func(c *config.Config) any { return []int{c.DefaultPoolSize, c.MinPoolSize} }, []int{50, 10}, ""},
		{"min_pool_size capped", "default_pool_size = 5\nmin_pool_size = 10\n",
			func(c *config.Config) any { return c.MinPoolSize }, 5, ""},
		{"server_reset_query empty", "server_reset_query =\n", func(c *config.Config) any { return c.ServerResetQuery }, "", ""},
		{"server_reset_query", "server_reset_query = DEALLOCATE ALL; RESET ALL\n", func(c *config.Config) any { return c.ServerResetQuery }, "DEALLOCATE ALL; RESET ALL", ""},
		{"server_check_delay fraction", "server_check_delay = 0.25\n", func(c *config.Config) any { return c.ServerCheckDelay }, sec(0.25), ""},
		{"server_check_delay 0", "server_check_delay = 0\n", func(c *config.Config) any { return c.ServerCheckDelay }, sec(0), ""},
		{"server_check_query empty query", "server_check_query = <empty>\n", func(c *config.Config) any { return c.ServerCheckQuery }, "select 1", ""},
		{"server_check_query off", "server_check_query =\n", func(c *config.Config) any { return c.ServerCheckQuery }, "", ""},
		{"server_lifetime", "server_lifetime = 120\n", func(c *config.Config) any { return c.ServerLifetime }, sec(120), ""},
		{"server_lifetime 0 is use once", "server_lifetime = 0\n", func(c *config.Config) any { return c.ServerLifetime }, sec(0.001), ""},
		{"server_idle_timeout", "server_idle_timeout = 0\n", func(c *config.Config) any { return c.ServerIdleTimeout }, sec(0), ""},
		{"autodb_idle_timeout", "autodb_idle_timeout = 60\n", func(c *config.Config) any { return c.AutodbIdleTimeout }, sec(60), ""},
		{"server_connect_timeout", "server_connect_timeout = 2.5\n", func(c *config.Config) any { return c.ServerConnectTimeout }, sec(2.5), ""},
		{"server_connect_timeout 0", "server_connect_timeout = 0\n", func(c *config.Config) any { return c.ServerConnectTimeout }, sec(3600), "mux needs a limit"},
		{"server_login_retry", "server_login_retry = 3\n", func(c *config.Config) any { return c.ServerLoginRetry }, sec(3), ""},
		{"server_login_retry 0", "server_login_retry = 0\n", func(c *config.Config) any { return c.ServerLoginRetry }, sec(0.001), ""},
		{"server_login_retry long", "server_login_retry = 300\n", func(c *config.Config) any { return c.ServerLoginRetry }, sec(60), "at most 1m"},
		{"query_wait_timeout", "query_wait_timeout = 0\n", func(c *config.Config) any { return c.QueryWaitTimeout }, sec(0), ""},
		{"query_wait_notify", "query_wait_notify = 10\n", func(c *config.Config) any { return c.QueryWaitNotify }, sec(10), ""},
		{"query_timeout", "query_timeout = 300\n", func(c *config.Config) any { return c.QueryTimeout }, sec(300), ""},
		{"client_login_timeout", "client_login_timeout = 5\n", func(c *config.Config) any { return c.ClientLoginTimeout }, sec(5), ""},
		{"client_idle_timeout", "client_idle_timeout = 7200\n", func(c *config.Config) any { return c.ClientIdleTimeout }, sec(7200), ""},
		{"idle_transaction_timeout", "idle_transaction_timeout = 0.5\n", func(c *config.Config) any { return c.IdleTransactionTimeout }, sec(0.5), ""},
		{"keepalive", "tcp_keepalive = 0\ntcp_keepidle = 30\ntcp_keepintvl = 5\ntcp_keepcnt = 3\n",
			func(c *config.Config) any { return []any{c.TCPKeepalive, c.TCPKeepIdle, c.TCPKeepIntvl, c.TCPKeepCnt} },
			[]any{false, sec(30), sec(5), 3}, ""},
		{"ignore_startup_parameters", "ignore_startup_parameters = extra_float_digits,, options , search_path,options\n",
			func(c *config.Config) any { return c.IgnoreStartupParameters }, []string{"extra_float_digits", "options", "search_path"}, ""},
		{"max_packet_size", "max_packet_size = 1048576\n", func(c *config.Config) any { return c.MaxMessageSize }, config.MiB, ""},
		{"max_packet_size odd", "max_packet_size = 100000\n", func(c *config.Config) any { return c.MaxMessageSize }, config.ByteSize(100000), ""},
		{"max_packet_size too large", "max_packet_size = 2147483647\n", func(c *config.Config) any { return c.MaxMessageSize }, config.GiB, "largest max_message_size is 1GB"},
		{"max_packet_size too small", "max_packet_size = 100\n", func(c *config.Config) any { return c.MaxMessageSize }, config.KiB, "smallest max_message_size is 1kB"},
		{"max_prepared_statements", "max_prepared_statements = 0\n", func(c *config.Config) any { return c.MaxPreparedStatements }, 0, ""},
		{"admin and stats users", "admin_users = postgres, admin\nstats_users = stats,postgres,stats\n",
			func(c *config.Config) any { return [][]string{c.AdminUsers, c.StatsUsers} },
			[][]string{{"postgres", "admin"}, {"stats", "postgres"}}, ""},
		{"client TLS", "client_tls_sslmode = verify-full\nclient_tls_key_file = " + dir + "/key.pem\nclient_tls_cert_file = " + dir + "/cert.pem\nclient_tls_ca_file = " + dir + "/ca.pem\nclient_tls_protocols = tlsv1.3\n",
			func(c *config.Config) any {
				return []string{c.ClientTLSSSLMode, c.ClientTLSKeyFile, c.ClientTLSCertFile, c.ClientTLSCAFile, c.ClientTLSMinVersion}
			},
			[]string{"verify-full", dir + "/key.pem", dir + "/cert.pem", dir + "/ca.pem", "tlsv1.3"}, ""},
		{"client TLS old protocols", "client_tls_sslmode = require\nclient_tls_key_file = " + dir + "/key.pem\nclient_tls_cert_file = " + dir + "/cert.pem\nclient_tls_protocols = all\n",
			func(c *config.Config) any { return c.ClientTLSMinVersion }, "tlsv1.2", "older than 1.2"},
		{"server TLS", "server_tls_sslmode = verify-ca\nserver_tls_ca_file = " + dir + "/ca.pem\nserver_tls_key_file = " + dir + "/key.pem\nserver_tls_cert_file = " + dir + "/cert.pem\nserver_tls_protocols = tlsv1.2\n",
			func(c *config.Config) any {
				return []string{c.ServerTLSSSLMode, c.ServerTLSCAFile, c.ServerTLSKeyFile, c.ServerTLSCertFile, c.ServerTLSMinVersion}
			},
			[]string{"verify-ca", dir + "/ca.pem", dir + "/key.pem", dir + "/cert.pem", "tlsv1.2"}, "cannot turn TLS 1.3 off"},
		{"server TLS disable", "server_tls_sslmode = disable\nserver_tls_protocols = all,!tlsv1.0,!tlsv1.1\n",
			func(c *config.Config) any { return []string{c.ServerTLSSSLMode, c.ServerTLSMinVersion} }, []string{"disable", "tlsv1.2"}, ""},
		{"server TLS allow", "server_tls_sslmode = allow\n", func(c *config.Config) any { return c.ServerTLSSSLMode }, "prefer", "no \"allow\" for servers"},
		{"logging and sockets", "log_disconnections = 0\nlog_stats = 0\nstats_period = 15\ntcp_user_timeout = 1500\nscram_iterations = 8192\napplication_name_add_host = 1\n",
			func(c *config.Config) any {
				return []any{c.LogConnections, c.LogDisconnections, c.LogStats, c.StatsPeriod.D(), c.TCPUserTimeout.D(), c.SCRAMIterations, c.ApplicationNameAddHost}
			},
			[]any{true, false, false, 15 * time.Second, 1500 * time.Millisecond, 8192, true}, ""},
		{"verbose", "verbose = 1\n", func(c *config.Config) any { return c.LogLevel }, "debug", ""},
		{"verbose 3", "verbose = 3\n", func(c *config.Config) any { return c.LogLevel }, "debug", "most verbose log level"},
		{"harmless unsupported settings", "pkt_buf = 4096\nso_reuseport = 0\nlog_connections = 1\nreserve_pool_size = 0\nsyslog = 0\ntcp_defer_accept = 45\n",
			func(c *config.Config) any { return nil }, nil, ""},
		{"logfile", "logfile = /var/log/pgbouncer.log\n", func(c *config.Config) any { return nil }, nil, "logfile = \"/var/log/pgbouncer.log\" (pgbouncer.ini:5): mux logs to stderr"},
		{"so_reuseport", "so_reuseport = 1\n", func(c *config.Config) any { return nil }, nil, "so_reuseport = \"1\""},
		{"ldap options are not repeated", "auth_ldap_options = ldapbindpasswd=hunter2\n", func(c *config.Config) any { return nil }, nil, "auth_ldap_options (pgbouncer.ini:5): not used, because auth_type is not ldap"},
		{"ldap", "auth_type = ldap\nauth_ldap_options = ldapurl=\"ldap://127.0.0.1:12345/dc=example,dc=net?uid?sub\"\n",
			func(c *config.Config) any { return []string{c.AuthType, c.AuthLDAPOptions} },
			[]string{"ldap", `ldapurl="ldap://127.0.0.1:12345/dc=example,dc=net?uid?sub"`}, ""},
		{"unknown setting", "no_such_thing = 1\n", func(c *config.Config) any { return nil }, nil, "no_such_thing = \"1\" (pgbouncer.ini:5): unknown PgBouncer setting"},
		{"peers without peer_id", "[peers]\n1 = host=/tmp/a\n2 = host=/tmp/b\n", func(c *config.Config) any { return c.Peers }, map[string]config.Peer(nil), "[peers] (2 entries): left out: peer_id is 0"},
		{"peers", "peer_id = 2\n[peers]\n1 = host=10.0.0.1 port=7432 pool_size=4\n2 = host=/tmp/b\n3 = host=@abstract\n",
			func(c *config.Config) any { return []any{int(c.PeerID), c.Peers} },
			[]any{2, map[string]config.Peer{"1": {Host: "10.0.0.1", Port: 7432, PoolSize: 4}, "2": {Host: "/tmp/b"}}}, "[peers] 3 (pgbouncer.ini:9): left out: mux cannot reach host \"@abstract\""},
		{"unknown section", "[extra]\nx = 1\n", func(c *config.Config) any { return nil }, nil, "[extra] (1 entries): unknown section"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, c := convertText(t, base+tt.settings, []userlist.Entry{{User: "alice", Secret: "alice-pw"}})
			if got := tt.check(c); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %#v, want %#v", got, tt.want)
			}
			if tt.note == "" && len(res.Notes) > 0 {
				t.Errorf("unexpected notes: %q", res.Notes)
			}
			if tt.note != "" && !noteWith(res.Notes, tt.note) {
				t.Errorf("no note contains %q; notes: %q", tt.note, res.Notes)
			}
			if strings.Contains(strings.Join(res.Notes, "\n"), "hunter2") {
				t.Error("a note repeats a secret")
			}
		})
	}
}

func TestConvertAuthQuery(t *testing.T) {
	scram := auth.NewSCRAMSecret("pw", []byte("0123456789abcdef"), 4096).String()
	entries := []userlist.Entry{{User: "pgb_auth", Secret: scram}, {User: "alice", Secret: "pw"}}
	ini := `[databases]
app = host=db1 auth_user=alice
authdb = host=db1 dbname=postgres_auth
other = host=db2 auth_user=nobody
[users]
ghost = pool_mode=session
[pgbouncer]
listen_addr = 127.0.0.1
auth_user = pgb_auth
auth_query = SELECT usename, passwd FROM pgbouncer.user_lookup($1)
auth_dbname = authdb
`
	res, c := convertText(t, ini, entries)
	if c.AuthUser != "pgb_auth" || c.AuthQuery != "SELECT usename, passwd FROM pgbouncer.user_lookup($1)" || c.AuthDBName != "authdb" {
		t.Errorf("auth_user %q, auth_query %q, auth_dbname %q", c.AuthUser, c.AuthQuery, c.AuthDBName)
	}
	if c.Databases["app"].AuthUser != "alice" || c.Databases["other"].AuthUser != "" {
		t.Errorf("databases %+v", c.Databases)
	}
	for _, n := range []string{
		`databases.other (pgbouncer.ini:4): auth_user="nobody" not carried over`,
		`users.ghost (pgbouncer.ini:6): left out: not in the auth_file, so it has no password; it can still log in through auth_query`,
	} {
		if !noteWith(res.Notes, n) {
			t.Errorf("no note contains %q; notes:\n%s", n, strings.Join(res.Notes, "\n"))
		}
	}
	if len(res.Notes) != 2 {
		t.Errorf("notes:\n%s", strings.Join(res.Notes, "\n"))
	}

	// PgBouncer's default queries become mux's safer one.
	for _, q := range []string{
		"SELECT usename, passwd FROM pg_shadow WHERE usename=$1",
		"select rolname, case when rolvaliduntil<now() then null else rolpassword end from pg_authid where rolname = $1 and rolcanlogin",
	} {
		res, c = convertText(t, base+"auth_user = pgb_auth\nauth_query = "+q+"\n", entries)
		if c.AuthQuery != config.DefaultAuthQuery || !noteWith(res.Notes, "PgBouncer's default query, replaced by mux's") {
			t.Errorf("%s: auth_query %q, notes %q", q, c.AuthQuery, res.Notes)
		}
	}
	_, c = convertText(t, base, entries)
	if c.AuthQuery != config.DefaultAuthQuery || c.AuthUser != "" || c.AuthDBName != "" {
		t.Errorf("defaults: %q %q %q", c.AuthQuery, c.AuthUser, c.AuthDBName)
	}

	if _, err := Convert(mustINI(t, base+"auth_user = pgb_auth\nauth_query = SELECT 1\n"), entries); err == nil ||
		!strings.Contains(err.Error(), "pgbouncer.ini:6: auth_query: the query must contain $1") {
		t.Errorf("auth_query without $1: %v", err)
	}
	if _, err := Convert(mustINI(t, base+"auth_user = pgb_auth\nauth_query =\n"), entries); err == nil {
		t.Error("empty auth_query accepted")
	}

	// An auth_user missing from the auth_file cannot be carried over.
	res, c = convertText(t, base+"auth_user = missing\n", entries)
	if c.AuthUser != "" || !noteWith(res.Notes, `auth_user = "missing" (pgbouncer.ini:5): not carried over`) {
		t.Errorf("auth_user %q, notes %q", c.AuthUser, res.Notes)
	}
}

func TestConvertHBA(t *testing.T) {
	dir := t.TempDir()
	good := filepath.Join(dir, "good.conf")
	writeFile(t, good, "local all all peer\nhostssl all all 0.0.0.0/0 cert\nhost all all 10.0.0.0/8 scram-sha-256\nhost all all all reject\n")
	bad := filepath.Join(dir, "bad.conf")
	writeFile(t, bad, "host all all 10.0.0.0/8 ldap\nhost all +admins all md5\n")
	md5 := auth.MD5Secret("bob", "pw")

	res, c := convertText(t, base+"auth_type = hba\nauth_hba_file = "+good+"\n", []userlist.Entry{{User: "bob", Secret: md5}})
	if c.AuthHBAFile != good || c.AuthType != "md5" || c.Users["bob"].Password != md5 || len(res.Notes) != 0 {
		t.Errorf("auth_hba_file %q, auth_type %q, users %+v, notes %q", c.AuthHBAFile, c.AuthType, c.Users, res.Notes)
	}

	// A file set without auth_type = hba is not used, by PgBouncer either.
	res, c = convertText(t, base+"auth_hba_file = "+good+"\n", nil)
	if c.AuthHBAFile != "" || !noteWith(res.Notes, "not used, because auth_type is not hba") {
		t.Errorf("auth_hba_file %q, notes %q", c.AuthHBAFile, res.Notes)
	}

	// Import checks the rules with mux's parser.
	ini := filepath.Join(dir, "p.ini")
	writeFile(t, ini, base+"auth_type = hba\nauth_hba_file = "+bad+"\n")
	res, err := Import(ini, "")
	if err != nil {
		t.Fatal(err)
	}
	if !noteWith(res.Notes, "mux cannot use these rules as they are") || !noteWith(res.Notes, "bad.conf:1") || !noteWith(res.Notes, "bad.conf:2") {
		t.Errorf("notes %q", res.Notes)
	}
	writeFile(t, ini, base+"auth_type = hba\nauth_hba_file = "+good+"\n")
	if res, err = Import(ini, ""); err != nil || len(res.Notes) != 1 { // only: no users
		t.Errorf("notes %q, %v", res.Notes, err)
	}
}

func TestConvertPlainWithMD5Secrets(t *testing.T) {
	md5 := auth.MD5Secret("bob", "pw")
	_, c := convertText(t, base+"auth_type = plain\n", []userlist.Entry{{User: "alice", Secret: "pw"}, {User: "bob", Secret: md5}})
	if c.AuthType != "md5" || c.Users["bob"].Password != md5 {
		t.Fatalf("auth_type %q, users %+v", c.AuthType, c.Users)
	}
}

func TestConvertCAFromSystemStore(t *testing.T) {
	res, err := Convert(mustINI(t, base+"server_tls_sslmode = verify-full\n"), nil)
	if err != nil {
		t.Fatal(err)
	}
	ca := systemCABundle()
	if !bytes.Contains(res.TOML, []byte("server_tls_ca_file = "+tomlString(ca))) || !noteWith(res.Notes, "system's CA store") {
		t.Fatalf("CA file %s not used:\n%s", ca, res.TOML)
	}
	if _, err := os.Stat(ca); err == nil {
		if _, err := config.Parse(res.TOML); err != nil {
			t.Fatal(err)
		}
	}
}

func mustINI(t *testing.T, text string) *INI {
	t.Helper()
	ini, err := ParseINI(strings.NewReader(text), "pgbouncer.ini")
	if err != nil {
		t.Fatal(err)
	}
	return ini
}

func TestConvertErrors(t *testing.T) {
	tests := []struct{ ini, want string }{
		{base + "auth_type = cert\n", "pgbouncer.ini:5: auth_type: mux authenticates with client certificates only through hba rules"},
		{base + "auth_type = hba\n", "auth_type = hba needs auth_hba_file"},
		{base + "auth_dbname = " + strings.Repeat("d", 64) + "\n", "auth_dbname: the name is 64 bytes long"},
		{base + "auth_type = pam\n", "cannot check passwords with pam"},
		{base + "auth_type = ldap\n", "pgbouncer.ini:5: auth_type: auth_type = ldap needs auth_ldap_options"},
		{base + "auth_type = ldap\nauth_ldap_options = ldapserver=h ldapbindpasswd=hunter2 ldapfoo=1\n", `pgbouncer.ini:6: auth_ldap_options: unknown LDAP option "ldapfoo"`},
		{base + "auth_type = crypt\n", "unknown auth_type \"crypt\""},
		{base + "listen_port = 70000\n", "listen_port: 70000 is out of range 1..65535"},
		{base + "listen_port = x\n", "\"x\" is not an integer"},
		{base + "listen_addr = a[b\n", "\"a[b\" is not a host name or IP address"},
		{base + "listen_addr =\nunix_socket_dir =\n", "nowhere to accept clients"},
		{base + "max_client_conn = 0\n", "max_client_conn: 0 is out of range"},
		{base + "default_pool_size = 0\n", "default_pool_size: 0 is out of range"},
		{base + "pool_mode = sometimes\n", "unknown pool_mode \"sometimes\""},
		{base + "query_timeout = -1\n", "\"-1\" is not a non-negative number of seconds"},
		{base + "query_timeout = 10s\n", "\"10s\" is not a non-negative number of seconds"},
		{base + "query_timeout = 1e300\n", "more than 100 years"},
		{base + "tcp_keepalive = maybe\n", "not a boolean"},
		{base + "client_tls_sslmode = require\n", "client_tls_sslmode = require needs client_tls_key_file and client_tls_cert_file"},
		{base + "client_tls_sslmode = sometimes\n", "unknown client_tls_sslmode"},
		{base + "server_tls_sslmode = sometimes\n", "unknown server_tls_sslmode"},
		{base + "server_tls_key_file = /k\n", "must be set together"},
		{base + "server_tls_protocols = sslv3\n", "unknown TLS protocol \"sslv3\""},
		{base + "server_tls_protocols = !tlsv1.2,!tlsv1.3\n", "no TLS protocol version is enabled"},
		{base + "server_reset_query = \xff\n", "server_reset_query: value is not valid UTF-8"},
		{"[databases]\nx = host=\n[pgbouncer]\n", "pgbouncer.ini:2: x: connection string: host: empty value"},
		{"[databases]\nx = port=0\n[pgbouncer]\n", "port: \"0\" is not a port number"},
		{"[databases]\nx = host=a,b,c port=1,2\n[pgbouncer]\n", "port: 2 ports for 3 hosts"},
		{"[databases]\nx = host=a,b load_balance_hosts=random\n[pgbouncer]\n", "load_balance_hosts: \"random\" is not round-robin or disable"},
		{"[databases]\nx = pool_mode=never\n[pgbouncer]\n", "unknown pool mode \"never\""},
		{"[databases]\nx = pool_size=many\n[pgbouncer]\n", "pool_size: \"many\" is not a pool size"},
		{"[databases]\nx = dbname='" + strings.Repeat("d", 64) + "'\n[pgbouncer]\n", "dbname: the name is 64 bytes long"},
		{"[users]\nbob = pool_mode=never\n[pgbouncer]\n", "unknown pool mode \"never\""},
		{"[users]\nbob = pool_mode\n[pgbouncer]\n", "user settings"},
	}
	for _, tt := range tests {
		_, err := Convert(mustINI(t, tt.ini), nil)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Convert(%q) error = %v, want it to contain %q", tt.ini, err, tt.want)
		}
	}
	// Several problems are all reported.
	_, err := Convert(mustINI(t, base+"listen_port = 0\npool_mode = x\nauth_type = y\n"), nil)
	if err == nil || strings.Count(err.Error(), "\n") != 2 {
		t.Errorf("want three errors, got %v", err)
	}
	if _, err := Convert(nil, nil); err == nil {
		t.Error("Convert(nil) succeeded")
	}
}

func TestConvertDatabases(t *testing.T) {
	scram := auth.NewSCRAMSecret("rep-pw", []byte("0123456789abcdef"), 4096).String()
	ini := `[databases]
app = host=10.0.0.1 port=5433 dbname=app_prod pool_size=30 min_pool_size=3 pool_mode=transaction
forced = host=/var/run/postgresql user=reporter
own = host=db user=owner password='it''s' pool_mode=STATEMENT
sockets = dbname=s
multi = host=h1,h2 port=5434
nopool = host=db pool_size=0
small = host=db pool_size=2
capped = host=db pool_size=4 min_pool_size=9
extras = host=db connect_query='SELECT 1' application_name=x client_encoding=UTF8 reserve_pool=2 auth_user=a max_db_connections=9 weird=1
pgbouncer = host=db
mux = host=db
"Odd ""name"".x" = host=db
` + strings.Repeat("n", 64) + ` = host=db
* = host=fallback
app = host=10.0.0.2 dbname=app_prod
[pgbouncer]
listen_addr = *
unix_socket_dir = /run/pgbouncer
min_pool_size = 3
`
	res, c := convertText(t, ini, []userlist.Entry{{User: "reporter", Secret: scram}})
	inherit := config.InheritMinPoolSize
	want := map[string]config.Database{
		// The later definition of app replaces the earlier one.
		"app":     {Host: "10.0.0.2", Port: 5432, DBName: "app_prod", MinPoolSize: inherit},
		"forced":  {Host: "/var/run/postgresql", Port: 5432, User: "reporter", Password: scram, MinPoolSize: inherit},
		"own":     {Host: "db", Port: 5432, User: "owner", Password: "it's", PoolMode: "statement", MinPoolSize: inherit},
		"sockets": {Host: "/run/pgbouncer", Port: 5432, DBName: "s", MinPoolSize: inherit},
		"multi": {MinPoolSize: inherit, HostsConfig: config.HostsConfig{
			Hosts:              []config.HostSpec{{Host: "h1", Port: 5434, Role: "auto"}, {Host: "h2", Port: 5434, Role: "auto"}},
			TargetSessionAttrs: "any", LoadBalanceHosts: "round-robin"}},
		"nopool": {Host: "db", Port: 5432, MinPoolSize: inherit},
		"small":  {Host: "db", Port: 5432, PoolSize: 2, MinPoolSize: 2},
		"capped": {Host: "db", Port: 5432, PoolSize: 4, MinPoolSize: 4},
		"extras": {Host: "db", Port: 5432, MinPoolSize: inherit,
			ServerParameters: config.ServerParameters{ApplicationName: "x", ClientEncoding: "UTF8"},
			DatabaseLimits:   config.DatabaseLimits{MaxDBConnections: 9, ReservePoolSize: ptr(2)},
			DatabaseServer:   config.DatabaseServer{ConnectQuery: "SELECT 1"}},
		`Odd "name".x`: {Host: "db", Port: 5432, MinPoolSize: inherit},
		"*":            {Host: "fallback", Port: 5432, MinPoolSize: inherit},
	}
	if !reflect.DeepEqual(c.Databases, want) {
		t.Errorf("databases:\ngot  %+v\nwant %+v", c.Databases, want)
	}
	for _, n := range []string{
		`databases.nopool (pgbouncer.ini:7): pool_size=0`,
		`databases.extras (pgbouncer.ini:10): auth_user="a" not carried over, because mux needs it in [users]`,
		`databases.extras (pgbouncer.ini:10): weird="1": unknown connection parameter`,
		`databases.pgbouncer (pgbouncer.ini:11): left out: the name is mux's admin console`,
		`databases.mux (pgbouncer.ini:12): left out`,
		`(pgbouncer.ini:14): left out: the name is 64 bytes long`,
	} {
		if !noteWith(res.Notes, n) {
			t.Errorf("no note contains %q; notes:\n%s", n, strings.Join(res.Notes, "\n"))
		}
	}
	if strings.Contains(strings.Join(res.Notes, "\n"), "it's") {
		t.Error("a note repeats a database password")
	}
	// Tables come out in file order.
	order := []string{"[databases.app]", "[databases.forced]", "[databases.own]", `[databases."Odd \"name\".x"]`, `[databases."*"]`}
	last := -1
	for _, h := range order {
		i := bytes.Index(res.TOML, []byte("\n"+h+"\n"))
		if i < last {
			t.Errorf("%s is missing or out of order", h)
		}
		last = i
	}
}

func TestConvertDatabaseWithoutSocketDir(t *testing.T) {
	res, c := convertText(t, "[databases]\nlocal = dbname=x\nremote = host=r\n[pgbouncer]\nlisten_addr = 127.0.0.1\nunix_socket_dir =\n", nil)
	if _, ok := c.Databases["local"]; ok || c.Databases["remote"].Host != "r" {
		t.Fatalf("databases %+v", c.Databases)
	}
	if !noteWith(res.Notes, "databases.local (pgbouncer.ini:2): left out: it has no host") {
		t.Errorf("notes %q", res.Notes)
	}
}

func TestConvertNoDatabases(t *testing.T) {
	res, c := convertText(t, "[pgbouncer]\nlisten_addr = 127.0.0.1\n", nil)
	want := map[string]config.Database{"*": {Host: "127.0.0.1", Port: 5432, MinPoolSize: config.InheritMinPoolSize}}
	if !reflect.DeepEqual(c.Databases, want) {
		t.Fatalf("databases %+v", c.Databases)
	}
	for _, n := range []string{"[databases]: no database was carried over", "no auth_file was read"} {
		if !noteWith(res.Notes, n) {
			t.Errorf("no note contains %q: %q", n, res.Notes)
		}
	}
}

func TestConvertUsers(t *testing.T) {
	scram := auth.NewSCRAMSecret("pw", []byte("0123456789abcdef"), 4096).String()
	md5 := auth.MD5Secret("bob", "pw")
	entries := []userlist.Entry{
		{User: "alice", Secret: "first"},
		{User: "bob", Secret: md5},
		{User: "carol", Secret: scram},
		{User: "alice", Secret: "second"}, // the later entry wins
		{User: "empty", Secret: ""},
		{User: "broken", Secret: "SCRAM-SHA-256$x"},
		{User: strings.Repeat("u", 64), Secret: "pw"},
		{User: "nul\x00", Secret: "pw"},
		{User: "quote\"back\\slash", Secret: "p\"w\\"},
	}
	ini := base + "[users]\nbob = pool_mode=transaction\ncarol = pool_mode=session max_user_connections=5 pool_size=3\nonly_here = pool_mode=statement\nbob = pool_mode=statement\n"

	t.Run("md5", func(t *testing.T) {
		res, c := convertText(t, ini, entries)
		want := map[string]config.User{
			"alice":              {Password: "second"},
			"bob":                {Password: md5, PoolMode: "statement"},
			"carol":              {Password: scram, PoolMode: "session", UserLimits: config.UserLimits{MaxUserConnections: 5, PoolSize: 3}},
			"quote\"back\\slash": {Password: "p\"w\\"},
		}
		if !reflect.DeepEqual(c.Users, want) {
			t.Errorf("users:\ngot  %+v\nwant %+v", c.Users, want)
		}
		for _, n := range []string{
			`user "empty": left out: empty password`,
			`user "broken": left out: `,
			`left out: the name is 64 bytes long`,
			`user "nul\x00": left out: the name contains a NUL byte`,
			`users.only_here (pgbouncer.ini:8): left out: not in the auth_file`,
		} {
			if !noteWith(res.Notes, n) {
				t.Errorf("no note contains %q; notes:\n%s", n, strings.Join(res.Notes, "\n"))
			}
		}
		if noteWith(res.Notes, "first") || noteWith(res.Notes, "second") {
			t.Error("a note repeats a password")
		}
	})
	t.Run("scram", func(t *testing.T) {
		res, c := convertText(t, strings.Replace(ini, "[users]", "auth_type = scram-sha-256\n[users]", 1), entries)
		if _, ok := c.Users["bob"]; ok {
			t.Error("bob's md5 secret was carried over with scram-sha-256")
		}
		if !noteWith(res.Notes, `user "bob": left out: its md5 secret cannot be used with auth_type = scram-sha-256`) {
			t.Errorf("notes %q", res.Notes)
		}
	})
	t.Run("trust", func(t *testing.T) {
		_, c := convertText(t, strings.Replace(ini, "[users]", "auth_type = trust\n[users]", 1), entries)
		if u, ok := c.Users["only_here"]; !ok || u.PoolMode != "statement" || u.Password != "" {
			t.Errorf("only_here = %+v, %v", u, ok)
		}
		if u, ok := c.Users["empty"]; !ok || u.Password != "" {
			t.Errorf("empty = %+v, %v", u, ok)
		}
	})
	t.Run("empty auth_file", func(t *testing.T) {
		res, _ := convertText(t, base, []userlist.Entry{})
		if !noteWith(res.Notes, "no user was carried over") {
			t.Errorf("notes %q", res.Notes)
		}
	})
}

func TestConvertQuoting(t *testing.T) {
	// Values with characters TOML must escape survive the round trip.
	weird := "a\"b\\c\td\x01é€\x7f"
	ini := "[databases]\n'db \"1\"\\x' = host=h password='" + weird + "'\n[pgbouncer]\nlisten_addr = 127.0.0.1\n" +
		"server_reset_query = " + weird + "\nserver_check_query = SELECT '\\n' -- \x1b[31m\n"
	res, c := convertText(t, ini, []userlist.Entry{{User: weird, Secret: weird}})
	if got := c.Databases[`db "1"\x`].Password; got != weird {
		t.Errorf("database password = %q", got)
	}
	if c.ServerResetQuery != weird || c.ServerCheckQuery != "SELECT '\\n' -- \x1b[31m" {
		t.Errorf("queries %q, %q", c.ServerResetQuery, c.ServerCheckQuery)
	}
	if c.Users[weird].Password != weird {
		t.Errorf("users %+v", c.Users)
	}
	// Comments never carry control characters.
	for line := range strings.SplitSeq(string(res.TOML), "\n") {
		if i := strings.Index(line, "#"); i >= 0 && strings.ContainsFunc(line[i:], isCommentControl) {
			t.Errorf("control character in comment: %q", line)
		}
	}
}

func TestTOMLString(t *testing.T) {
	for _, s := range []string{"", "plain", `"`, `\`, "\x00\x01\b\t\n\f\r\x1f\x7f", "ünï€ode 🐘", "$SCRAM$:+/="} {
		doc := "server_reset_query = " + tomlString(s) + "\n[databases.app]\n"
		c, err := config.Parse([]byte(doc))
		if err != nil {
			t.Errorf("%q: %v", s, err)
			continue
		}
		if c.ServerResetQuery != s {
			t.Errorf("round trip of %q gave %q", s, c.ServerResetQuery)
		}
	}
	for k, want := range map[string]string{"app": "app", "a-b_C9": "a-b_C9", "*": `"*"`, "a.b": `"a.b"`, "a b": `"a b"`, "": `""`} {
		if got := tomlKey(k); got != want {
			t.Errorf("tomlKey(%q) = %s, want %s", k, got, want)
		}
	}
}

func TestFormatDuration(t *testing.T) {
	for in, want := range map[string]string{"0": "0s", "30": "30s", "3600": "3600s", "0.5": "500ms", "2.5": "2500ms", "0.0000015": "2us", "1e-9": "0s"} {
		d, err := parseSeconds(in)
		if err != nil {
			t.Fatal(err)
		}
		if got := formatDuration(d); got != want {
			t.Errorf("%s seconds -> %q, want %q", in, got, want)
		}
	}
}

func TestConvertHeaderAndDeterminism(t *testing.T) {
	old := now
	now = func() time.Time { return time.Date(2025, 3, 4, 23, 30, 0, 0, time.FixedZone("x", -3600)) }
	defer func() { now = old }()
	ini := mustINI(t, base+"logfile = /x\nsyslog = 1\n")
	ini.Name = "/etc/pgbouncer/pgbouncer.ini"
	res1, _ := convertINI(t, ini, []userlist.Entry{{User: "b", Secret: "1"}, {User: "a", Secret: "2"}})
	res2, _ := convertINI(t, ini, []userlist.Entry{{User: "b", Secret: "1"}, {User: "a", Secret: "2"}})
	if !bytes.Equal(res1.TOML, res2.TOML) || !reflect.DeepEqual(res1.Notes, res2.Notes) {
		t.Fatal("two conversions differ")
	}
	if want := "# generated by mux import-pgbouncer from /etc/pgbouncer/pgbouncer.ini on 2025-03-05\n"; !bytes.HasPrefix(res1.TOML, []byte(want)) {
		t.Errorf("header:\n%s", res1.TOML[:200])
	}
	// The notes come before the first setting.
	first := bytes.Index(res1.TOML, []byte("\nlisten = "))
	for _, n := range res1.Notes {
		if i := bytes.Index(res1.TOML, []byte("# NOT CARRIED OVER: "+n)); i < 0 || i > first {
			t.Errorf("note %q is not at the top", n)
		}
	}
	if len(res1.Notes) != 2 {
		t.Errorf("notes %q", res1.Notes)
	}
	// Users keep auth_file order.
	if bytes.Index(res1.TOML, []byte("[users.b]")) > bytes.Index(res1.TOML, []byte("[users.a]")) {
		t.Error("users are not in auth_file order")
	}
}

// setupFull copies testdata/full.ini and the files it uses to a temporary
// directory, with placeholder TLS files, and returns the ini's path.
func setupFull(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, name := range []string{"full.ini", "local.ini", "userlist.txt"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name), strings.ReplaceAll(string(data), "@DIR@", dir))
	}
	writeFile(t, filepath.Join(dir, "server.key"), "placeholder\n")
	writeFile(t, filepath.Join(dir, "server.crt"), "placeholder\n")
	return filepath.Join(dir, "full.ini")
}

func TestImportFull(t *testing.T) {
	iniPath := setupFull(t)
	dir := filepath.Dir(iniPath)
	res, err := Import(iniPath, "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(res.TOML)
	if err != nil {
		t.Fatalf("config.Parse:\n%s\n%v", res.TOML, err)
	}
	inherit := config.InheritMinPoolSize
	wantDBs := map[string]config.Database{
		"app": {Host: "10.0.0.5", Port: 5433, DBName: "app_production", PoolMode: "transaction", PoolSize: 40, MinPoolSize: 5},
		"reports": {Host: dir, Port: 5432, DBName: "reporting", User: "reporter", Password: "reporter-pw", PoolSize: 5, MinPoolSize: inherit,
			DatabaseServer: config.DatabaseServer{ConnectQuery: "SET statement_timeout = '5min'"}},
		"legacy": {Host: "legacy.internal", Port: 5432, User: "legacy_app", Password: "legacy-secret", MinPoolSize: inherit,
			ServerParameters: config.ServerParameters{ClientEncoding: "UTF8", DateStyle: "ISO"}},
		"sales.eu": {Host: "10.0.0.6", Port: 5432, DBName: "sales", MinPoolSize: inherit},
		"*":        {Host: "10.0.0.5", Port: 5433, MinPoolSize: inherit},
	}
	if !reflect.DeepEqual(c.Databases, wantDBs) {
		t.Errorf("databases:\ngot  %+v\nwant %+v", c.Databases, wantDBs)
	}
	if len(c.Users) != 5 || c.Users["alice"].PoolMode != "statement" || c.Users["batch"].PoolMode != "session" ||
		c.Users["batch"].Password != `batch "quoted" pw` || !strings.HasPrefix(c.Users["postgres"].Password, "SCRAM-SHA-256$4096:") {
		t.Errorf("users %+v", c.Users)
	}
	sec := func(n float64) config.Duration { return config.Duration(time.Duration(n * float64(time.Second))) }
	got := []any{c.Listen, c.UnixSocketDir, c.UnixSocketMode, c.MaxClientConn, c.AuthType, c.PoolMode,
		c.DefaultPoolSize, c.MinPoolSize, c.ServerCheckDelay, c.ServerLifetime, c.ServerIdleTimeout,
		c.ServerConnectTimeout, c.ServerLoginRetry, c.QueryWaitTimeout, c.ClientIdleTimeout,
		c.ClientLoginTimeout, c.IdleTransactionTimeout, c.AdminUsers, c.StatsUsers, c.IgnoreStartupParameters,
		c.ClientTLSSSLMode, c.ClientTLSKeyFile, c.ServerTLSSSLMode, c.TCPKeepIdle, c.TCPKeepIntvl, c.TCPKeepCnt,
		c.MaxMessageSize, c.LogLevel, c.LogConnections, c.LogDisconnections, c.StatsPeriod}
	want := []any{[]string{"127.0.0.1:6433", "10.0.0.2:6433"}, dir, "0770", 3000, "scram-sha-256", "transaction",
		25, 2, sec(10), sec(1800), sec(300),
		sec(5), sec(2.5), sec(60), sec(3600),
		sec(30), sec(120), []string{"postgres"}, []string{"monitor", "postgres"}, []string{"extra_float_digits", "search_path"},
		"prefer", dir + "/server.key", "require", sec(60), sec(10), 5,
		64 * config.MiB, "debug", false, true, sec(30)}
	for i := range got {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("setting %d = %#v, want %#v", i, got[i], want[i])
		}
	}
	wantNotes := []string{
		"logfile = ", "pidfile = ", `user "old": left out`,
	}
	if c.ReservePoolSize != 5 || c.ReservePoolTimeout.D() != 3*time.Second || c.Users["alice"].MaxUserConnections != 10 {
		t.Errorf("reserve_pool_size %d, reserve_pool_timeout %s, alice's max_user_connections %d; want 5, 3s, 10",
			c.ReservePoolSize, c.ReservePoolTimeout, c.Users["alice"].MaxUserConnections)
	}
	if len(res.Notes) != len(wantNotes) {
		t.Errorf("%d notes, want %d:\n%s", len(res.Notes), len(wantNotes), strings.Join(res.Notes, "\n"))
	}
	for _, n := range wantNotes {
		if !noteWith(res.Notes, n) {
			t.Errorf("no note contains %q", n)
		}
	}

	// An explicit auth file replaces the ini's auth_file.
	other := filepath.Join(dir, "other.txt")
	writeFile(t, other, "\"postgres\" \"pw\"\n")
	res, err = Import(iniPath, other)
	if err != nil {
		t.Fatal(err)
	}
	if c, err = config.Parse(res.TOML); err != nil || len(c.Users) != 1 || c.Users["postgres"].Password != "pw" {
		t.Fatalf("users %+v, %v", c.Users, err)
	}
}

func TestImportErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := Import(filepath.Join(dir, "none.ini"), ""); err == nil {
		t.Error("missing ini accepted")
	}
	ini := filepath.Join(dir, "p.ini")
	writeFile(t, ini, base+"auth_file = users.txt\n")
	if _, err := Import(ini, ""); err == nil || !strings.Contains(err.Error(), filepath.Join(dir, "users.txt")) {
		t.Errorf("missing auth_file: %v", err)
	}
	writeFile(t, filepath.Join(dir, "users.txt"), "\"a\" b\n")
	if _, err := Import(ini, ""); err == nil || !strings.Contains(err.Error(), "users.txt:1: password") {
		t.Errorf("broken auth_file: %v", err)
	}
	writeFile(t, filepath.Join(dir, "users.txt"), "\"a\" \"b\"\n")
	res, err := Import(ini, "")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(res.TOML, []byte("[users.a]\npassword = \"b\"\n")) {
		t.Errorf("auth_file relative to the ini not read:\n%s", res.TOML)
	}
	writeFile(t, ini, "[pgbouncer]\nauth_type = cert\n")
	if _, err := Import(ini, ""); err == nil {
		t.Error("auth_type = cert accepted")
	}
}

func TestExpandHome(t *testing.T) {
	home, err := os.UserHomeDir()
	if err != nil {
		t.Skip(err)
	}
	for in, want := range map[string]string{"~/u.txt": filepath.Join(home, "u.txt"), "~": home, "/abs": "/abs", "rel/~": "rel/~"} {
		if got, err := expandHome(in); err != nil || got != want {
			t.Errorf("expandHome(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
	if _, err := expandHome("~no-such-user-here/x"); err == nil {
		t.Error("unknown user accepted")
	}
}

// TestImportPackagedSample converts a configuration in the style that
// distribution packages install, and Debian's own sample if this machine has
// it, and checks that mux accepts the results.
func TestImportPackagedSample(t *testing.T) {
	res, err := Import(filepath.Join("testdata", "packaged.ini"), "")
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(res.TOML)
	if err != nil {
		t.Fatalf("config.Parse:\n%s\n%v", res.TOML, err)
	}
	// It defines no database, so a wildcard entry is added; it listens on
	// localhost and the socket directory, and logs to a file.
	if _, ok := c.Databases["*"]; !ok || len(c.Databases) != 1 {
		t.Errorf("databases %+v", c.Databases)
	}
	if !reflect.DeepEqual(c.Listen, []string{"localhost:6432"}) || c.UnixSocketDir != "/var/run/postgresql" ||
		c.AuthType != "md5" || c.PoolMode != "session" || c.MaxClientConn != 100 || len(c.Users) != 0 {
		t.Errorf("listen %q, socket %q, auth %q, pool_mode %q, max_client_conn %d, users %v",
			c.Listen, c.UnixSocketDir, c.AuthType, c.PoolMode, c.MaxClientConn, c.Users)
	}
	for _, n := range []string{"logfile = ", "pidfile = ", "[databases]: no database was carried over", "no user was carried over"} {
		if !noteWith(res.Notes, n) {
			t.Errorf("no note contains %q: %q", n, res.Notes)
		}
	}
	if len(res.Notes) != 4 {
		t.Errorf("notes %q", res.Notes)
	}
}

func TestImportDebianSample(t *testing.T) {
	const sample = "/etc/pgbouncer/pgbouncer.ini"
	if _, err := os.Stat(sample); err != nil {
		t.Skip("no " + sample + "; apt-get install pgbouncer to run this test")
	}
	res, err := Import(sample, "")
	if errors.Is(err, fs.ErrPermission) {
		// The packaged userlist.txt is often readable by its owner only.
		empty := filepath.Join(t.TempDir(), "userlist.txt")
		writeFile(t, empty, "")
		res, err = Import(sample, empty)
	}
	if err != nil {
		t.Fatal(err)
	}
	c, err := config.Parse(res.TOML)
	if err != nil {
		t.Fatalf("config.Parse:\n%s\n%v", res.TOML, err)
	}
	t.Logf("%d notes: %q", len(res.Notes), res.Notes)
	// The file may have been edited since it was installed; check what
	// holds for any content.
	ini := mustINIFile(t, sample)
	if len(ini.Sections["databases"]) == 0 {
		if _, ok := c.Databases["*"]; !ok || !noteWith(res.Notes, "[databases]: no database was carried over") {
			t.Errorf("no wildcard database added: %+v", c.Databases)
		}
	}
	for _, key := range []string{"logfile", "pidfile"} {
		if kv, ok := ini.Get("pgbouncer", key); ok && kv.Value != "" && !noteWith(res.Notes, key+" = ") {
			t.Errorf("no note for %s", key)
		}
	}
	if kv, ok := ini.Get("pgbouncer", "auth_type"); !ok || kv.Value == "md5" {
		if c.AuthType != "md5" {
			t.Errorf("auth_type %q", c.AuthType)
		}
	}
}

func mustINIFile(t *testing.T, path string) *INI {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ini, err := ParseINI(f, path)
	if err != nil {
		t.Fatal(err)
	}
	return ini
}

// TestConvertComplete checks that the generated file sets every top-level
// mux setting, so none of mux's defaults apply silently.
func TestConvertComplete(t *testing.T) {
	res, _ := convertText(t, base, nil)
	var doc map[string]any
	if _, err := toml.Decode(string(res.TOML), &doc); err != nil {
		t.Fatal(err)
	}
	var check func(typ reflect.Type)
	check = func(typ reflect.Type) {
		for i := range typ.NumField() {
			if f := typ.Field(i); f.Anonymous {
				check(f.Type) // embedded: its keys are top-level keys
				continue
			}
			key, _, _ := strings.Cut(typ.Field(i).Tag.Get("toml"), ",")
			if _, ok := doc[key]; !ok && key != "users" && key != "peers" {
				t.Errorf("%s is not set", key)
			}
		}
	}
	check(reflect.TypeFor[config.Config]())
}
