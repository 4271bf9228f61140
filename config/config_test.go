package config

import (
	"bytes"
	"crypto/hmac"
	"crypto/pbkdf2"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/muxpg/mux/auth"
)

const minimalDB = "[databases.app]\n"

func mustParse(t *testing.T, doc string) *Config {
	t.Helper()
	c, err := Parse([]byte(doc))
	if err != nil {
		t.Fatalf("Parse:\n%s\nerror: %v", doc, err)
	}
	return c
}

func TestDefaultsApplied(t *testing.T) {
	c := mustParse(t, minimalDB)
	want := Default()
	want.Databases["app"] = Database{Host: DefaultHost, Port: DefaultPort, MinPoolSize: InheritMinPoolSize}
	if !reflect.DeepEqual(c, want) {
		t.Fatalf("got  %+v\nwant %+v", c, want)
	}
	checks := []struct {
		name      string
		got, want any
	}{
		{"listen", c.Listen, []string{"127.0.0.1:6432"}},
		{"unix_socket_mode", c.UnixSocketMode, "0777"},
		{"max_client_conn", c.MaxClientConn, 10000},
		{"auth_type", c.AuthType, "scram-sha-256"},
		{"pool_mode", c.PoolMode, "transaction"},
		{"default_pool_size", c.DefaultPoolSize, 20},
		{"server_reset_query", c.ServerResetQuery, "DISCARD ALL"},
		{"server_check_delay", c.ServerCheckDelay.D(), 30 * time.Second},
		{"server_check_query", c.ServerCheckQuery, "select 1"},
		{"server_lifetime", c.ServerLifetime.D(), time.Hour},
		{"server_idle_timeout", c.ServerIdleTimeout.D(), 10 * time.Minute},
		{"server_connect_timeout", c.ServerConnectTimeout.D(), 15 * time.Second},
		{"server_login_retry", c.ServerLoginRetry.D(), time.Second},
		{"query_wait_timeout", c.QueryWaitTimeout.D(), 2 * time.Minute},
		{"query_wait_notify", c.QueryWaitNotify.D(), 5 * time.Second},
		{"client_login_timeout", c.ClientLoginTimeout.D(), time.Minute},
		{"client_idle_timeout", c.ClientIdleTimeout.D(), time.Duration(0)},
		{"tcp_keepalive", c.TCPKeepalive, true},
		{"max_message_size", c.MaxMessageSize, ByteSize(256 << 20)},
		{"log_format", c.LogFormat, "text"},
		{"log_level", c.LogLevel, "info"},
	}
	for _, ck := range checks {
		if !reflect.DeepEqual(ck.got, ck.want) {
			t.Errorf("%s = %v, want %v", ck.name, ck.got, ck.want)
		}
	}
}

func TestExplicitValuesKept(t *testing.T) {
	c := mustParse(t, `
listen = []
unix_socket_dir = "/tmp"
server_check_delay = "0"
server_lifetime = 0
server_idle_timeout = "0s"
query_wait_timeout = "0"
client_login_timeout = "0"
server_reset_query = ""
server_check_query = ""
tcp_keepalive = false
min_pool_size = 0
default_pool_size = 1
auth_type = "trust"

[databases.app]
host = "/var/run/postgresql"
port = 5433
min_pool_size = 0
pool_size = 0

[databases.other]

[users.bob]
password = ""
`)
	if len(c.Listen) != 0 {
		t.Errorf("listen = %v, want empty", c.Listen)
	}
	for name, d := range map[string]Duration{
		"server_check_delay":   c.ServerCheckDelay,
		"server_lifetime":      c.ServerLifetime,
		"server_idle_timeout":  c.ServerIdleTimeout,
		"query_wait_timeout":   c.QueryWaitTimeout,
		"client_login_timeout": c.ClientLoginTimeout,
	} {
		if d != 0 {
			t.Errorf("%s = %v, want 0", name, d)
		}
	}
	if c.ServerResetQuery != "" || c.ServerCheckQuery != "" {
		t.Errorf("queries = %q, %q; want empty", c.ServerResetQuery, c.ServerCheckQuery)
	}
	if c.TCPKeepalive {
		t.Error("tcp_keepalive = true, want false")
	}
	app := c.Databases["app"]
	if app.Host != "/var/run/postgresql" || app.Port != 5433 || app.MinPoolSize != 0 {
		t.Errorf("databases.app = %+v", app)
	}
	if got := c.Databases["other"].MinPoolSize; got != InheritMinPoolSize {
		t.Errorf("databases.other.min_pool_size = %d, want %d", got, InheritMinPoolSize)
	}
	if got := c.UnixSocketPath(); got != "/tmp/.s.PGSQL.6432" {
		t.Errorf("UnixSocketPath = %q", got)
	}
}

func TestUnknownKeys(t *testing.T) {
	tests := []struct {
		name, doc, want string
	}{
		{"top level", "pool_mod = \"session\"\n" + minimalDB, `unknown key "pool_mod"; did you mean "pool_mode"?`},
		{"top level far", "frobnicate = 1\n" + minimalDB, `unknown key "frobnicate"`},
		{"wrong case", "Pool_Mode = \"session\"\n" + minimalDB, `unknown key "Pool_Mode"; did you mean "pool_mode"?`},
		{"database field", "[databases.app]\nhots = \"x\"\n", `unknown key "databases.app.hots"; did you mean "hosts"?`},
		{"database field case", "[databases.app]\nHOST = \"x\"\n", `unknown key "databases.app.HOST"; did you mean "host"?`},
		{"wildcard field", "[databases.\"*\"]\nprot = 1\n", `unknown key "databases.\"*\".prot"; did you mean "port"?`},
		{"inline table", "databases = { app = { hots = \"x\" } }\n", `unknown key "databases.app.hots"; did you mean "hosts"?`},
		{"user field", minimalDB + "[users.bob]\npassword = \"x\"\npasword = \"y\"\n", `unknown key "users.bob.pasword"; did you mean "password"?`},
		{"unknown table", minimalDB + "[pool]\nsize = 1\n", `unknown key "pool"`},
		{"nested unknown table", minimalDB + "[pool]\nsize = 1\n", `unknown key "pool.size"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { parseFailsWithLine(t, tt.doc, tt.want) })
	}
}

// parseFailsWithLine checks that Parse refuses doc with an error that
// has want as one of its lines.
func parseFailsWithLine(t *testing.T, doc, want string) {
	t.Helper()
	_, err := Parse([]byte(doc))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	if !containsLine(err.Error(), want) {
		t.Fatalf("error %q does not contain the line %q", err, want)
	}
}

func containsLine(s, line string) bool {
	for l := range strings.Lines(s) {
		if strings.TrimSuffix(l, "\n") == line {
			return true
		}
	}
	return false
}

func TestInvalidValues(t *testing.T) {
	const scram = "SCRAM-SHA-256$4096:c2FsdA==$"
	key := strings.Repeat("A", 43) + "=" // 32 zero bytes
	scram0 := "SCRAM-SHA-256$0:c2FsdA==$" + key + ":" + key
	tests := []struct {
		name, global, tables, want string
	}{
		{"listen empty", "listen = []", "", "listen: must not be empty unless unix_socket_dir is set"},
		{"listen bad", `listen = ["localhost"]`, "", `listen: address 1 ("localhost")`},
		{"listen bad port", `listen = ["127.0.0.1:http"]`, "", `listen: address 1 ("127.0.0.1:http"): port "http" is not a number`},
		{"listen port range", `listen = [":70000"]`, "", `port "70000" is not a number in 0..65535`},
		{"listen duplicate", `listen = [":6432", ":6432"]`, "", `listen: address ":6432" is listed twice`},
		{"socket mode", `unix_socket_mode = "0999"`, "", `unix_socket_mode: "0999" is not an octal permission`},
		{"socket mode big", `unix_socket_mode = "1777"`, "", `unix_socket_mode: "1777" is not an octal permission`},
		{"socket mode empty", `unix_socket_mode = ""`, "", `unix_socket_mode: must be an octal permission`},
		{"max_client_conn", "max_client_conn = 0", "", "max_client_conn: 0 is less than 1"},
		{"auth_type", `auth_type = "password"`, "", `auth_type: "password" is not one of trust, md5, scram-sha-256`},
		{"pool_mode", `pool_mode = "txn"`, "", `pool_mode: "txn" is not one of session, transaction, statement`},
		{"default_pool_size", "default_pool_size = 0", "", "default_pool_size: 0 is less than 1"},
		{"min_pool_size", "min_pool_size = 21", "", "min_pool_size: 21 is out of range 0..20"},
		{"min_pool_size negative", "min_pool_size = -1", "", "min_pool_size: -1 is out of range 0..20"},
		{"negative duration", `server_lifetime = "-1s"`, "", "server_lifetime: -1s is negative"},
		{"negative query_wait_notify", `query_wait_notify = "-1s"`, "", "query_wait_notify: -1s is negative"},
		{"negative keepidle", `tcp_keepidle = "-5s"`, "", "tcp_keepidle: -5s is negative"},
		{"connect timeout zero", `server_connect_timeout = "0"`, "", "server_connect_timeout: must be greater than 0"},
		{"login retry zero", `server_login_retry = "0"`, "", "server_login_retry: 0s is out of range (0s, 1m0s]"},
		{"login retry big", `server_login_retry = "61s"`, "", "server_login_retry: 1m1s is out of range (0s, 1m0s]"},
		{"keepcnt", "tcp_keepcnt = -1", "", "tcp_keepcnt: -1 is less than 0"},
		{"user timeout", `tcp_user_timeout = "-1s"`, "", "tcp_user_timeout: -1s is negative"},
		{"scram iterations zero", "scram_iterations = 0", "", "scram_iterations: 0 is out of range 1..1000000"},
		{"scram iterations big", "scram_iterations = 1000001", "", "scram_iterations: 1000001 is out of range 1..1000000"},
		{"stats period zero", `stats_period = "0"`, "", "stats_period: must be greater than 0"},
		{"ignore param", `ignore_startup_parameters = [""]`, "", `ignore_startup_parameters: entry 1 ("") is not a valid parameter name`},
		{"message size small", "max_message_size = 1023", "", "max_message_size: 1023 is out of range 1kB..1GB"},
		{"message size big", `max_message_size = "2GB"`, "", "max_message_size: 2GB is out of range 1kB..1GB"},
		{"log_format", `log_format = "xml"`, "", `log_format: "xml" is not one of text, json`},
		{"log_level", `log_level = "trace"`, "", `log_level: "trace" is not one of debug, info, warn, error`},
		{"no databases", "", "-", "databases: at least one database must be configured"},
		{"db port", "", "[databases.app]\nport = 70000", "databases.app.port: 70000 is out of range 1..65535"},
		{"db port zero", "", "[databases.app]\nport = 0", "databases.app.port: 0 is out of range 1..65535"},
		{"db host empty", "", "[databases.app]\nhost = \"\"", "databases.app.host: must not be empty"},
		{"db name long", "", "[databases." + strings.Repeat("d", 64) + "]", "databases." + strings.Repeat("d", 64) + ": database name is 64 bytes long; the maximum is 63"},
		{"db name empty", "", "[databases.\"\"]", `databases."": database name must not be empty`},
		{"db name nul", "", "[databases.\"a\\u0000b\"]", "database name must not contain NUL bytes"},
		{"db dbname long", "", "[databases.app]\ndbname = \"" + strings.Repeat("x", 64) + "\"", "databases.app.dbname: database name is 64 bytes long"},
		{"db user nul", "", "[databases.app]\nuser = \"a\\u0000\"", "databases.app.user: user name must not contain NUL bytes"},
		{"db password", "", "[databases.app]\npassword = \"" + scram0 + "\"", "databases.app.password: malformed SCRAM-SHA-256 secret: bad iteration count"},
		{"db password nul", "", "[databases.app]\npassword = \"a\\u0000b\"", "databases.app.password: password must not contain NUL bytes"},
		{"db pool_mode", "", "[databases.app]\npool_mode = \"sess\"", `databases.app.pool_mode: "sess" is not one of session, transaction, statement`},
		{"db pool_size", "", "[databases.app]\npool_size = -1", "databases.app.pool_size: -1 is less than 0"},
		{"db min_pool_size", "", "[databases.app]\nmin_pool_size = -2", "databases.app.min_pool_size: -2 is less than -1"},
		{"db min over size", "", "[databases.app]\npool_size = 2\nmin_pool_size = 3", "databases.app.min_pool_size: 3 is greater than the pool size 2"},
		{"db min over default", "", "[databases.app]\nmin_pool_size = 21", "databases.app.min_pool_size: 21 is greater than the pool size 20"},
		{"db inherited min", "min_pool_size = 5", "[databases.\"*\"]\npool_size = 2", `databases."*".pool_size: 2 is less than the global min_pool_size 5; lower it or set databases."*".min_pool_size`},
		{"user name long", "", minimalDB + "[users." + strings.Repeat("u", 64) + "]\npassword = \"x\"", "users." + strings.Repeat("u", 64) + ": user name is 64 bytes long"},
		{"user no password", "", minimalDB + "[users.bob]", "users.bob.password: must not be empty unless auth_type is trust"},
		{"user scram with md5", `auth_type = "md5"`, minimalDB + "[users.bob]\npassword = \"" + scram + "AAAA\"", "users.bob.password: malformed SCRAM-SHA-256 secret"},
		{"user md5 with scram", "", minimalDB + "[users.bob]\npassword = \"md5" + strings.Repeat("a", 32) + "\"", "users.bob.password: an md5 secret cannot be used with auth_type scram-sha-256"},
		{"user scram", "", minimalDB + "[users.bob]\npassword = \"" + scram + "AAAA:AAAA\"", "users.bob.password: malformed SCRAM-SHA-256 secret: bad StoredKey"},
		{"user pool_mode", "", minimalDB + "[users.bob]\npassword = \"x\"\npool_mode = \"x\"", `users.bob.pool_mode: "x" is not one of session, transaction, statement`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tables := tt.tables
			switch tables {
			case "":
				tables = minimalDB
			case "-":
				tables = ""
			}
			doc := tt.global + "\n" + tables + "\n"
			_, err := Parse([]byte(doc))
			if err == nil {
				t.Fatalf("Parse succeeded on\n%s", doc)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestDecodeErrorsNameKey(t *testing.T) {
	tests := []struct{ name, doc, want string }{
		{"duration integer", "server_lifetime = 30\n" + minimalDB, `server_lifetime: duration 30 has no unit; write it as a string such as "30s"`},
		{"duration bad", "server_lifetime = \"30 parsecs\"\n" + minimalDB, `server_lifetime: invalid duration "30 parsecs"`},
		{"duration bool", "server_lifetime = true\n" + minimalDB, `server_lifetime: a duration must be a string such as "30s", not a boolean`},
		{"byte size unit", "max_message_size = \"5 furlongs\"\n" + minimalDB, `max_message_size: invalid byte size "5 furlongs": unknown unit`},
		{"byte size float", "max_message_size = 1.5\n" + minimalDB, `max_message_size: a byte size must be an integer or a string such as "64MB", not a float`},
		{"wildcard port type", "[databases.\"*\"]\nport = \"x\"\n", `databases."*".port: incompatible types: TOML value has type string; destination has type integer (line 2)`},
		{"listen type", "listen = \"127.0.0.1:6432\"\n" + minimalDB, "listen: incompatible types"},
		{"table type", "databases = 1\n", "databases: "},
		{"syntax", "pool_mode = \n", "line 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.doc))
			if err == nil {
				t.Fatal("Parse succeeded")
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %q does not contain %q", err, tt.want)
			}
		})
	}
}

func TestErrorsCollectedAndSorted(t *testing.T) {
	doc := `
pool_mode = "txn"
log_level = "loud"
bogus = 1
[databases.app]
port = 0
`
	_, err := Parse([]byte(doc))
	if err == nil {
		t.Fatal("Parse succeeded")
	}
	want := strings.Join([]string{
		"databases.app.port: 0 is out of range 1..65535",
		`log_level: "loud" is not one of debug, info, warn, error`,
		`pool_mode: "txn" is not one of session, transaction, statement`,
		`unknown key "bogus"`,
	}, "\n")
	if err.Error() != want {
		t.Fatalf("error:\n%s\nwant:\n%s", err, want)
	}
	// The same input gives the same error every time.
	for range 5 {
		if _, err2 := Parse([]byte(doc)); err2.Error() != err.Error() {
			t.Fatalf("nondeterministic error:\n%s\nvs\n%s", err2, err)
		}
	}
}

func TestLookupDatabase(t *testing.T) {
	c := mustParse(t, `
pool_mode = "session"
default_pool_size = 7
min_pool_size = 2
[databases.app]
dbname = "appdb"
pool_mode = "statement"
pool_size = 3
min_pool_size = 1
[databases.plain]
[databases."*"]
host = "/tmp"
port = 5433
`)
	tests := []struct {
		name string
		ok   bool
		want Database
	}{
		{"app", true, Database{Host: "127.0.0.1", Port: 5432, DBName: "appdb", PoolMode: "statement", PoolSize: 3, PinPolicy: "pin", MinPoolSize: 1}},
		{"plain", true, Database{Host: "127.0.0.1", Port: 5432, DBName: "plain", PoolMode: "session", PoolSize: 7, PinPolicy: "pin", MinPoolSize: 2}},
		{"sales", true, Database{Host: "/tmp", Port: 5433, DBName: "sales", PoolMode: "session", PoolSize: 7, PinPolicy: "pin", MinPoolSize: 2}},
		{"", false, Database{}},
	}
	for _, tt := range tests {
		got, ok := c.LookupDatabase(tt.name)
		if ok != tt.ok || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("LookupDatabase(%q) = %+v, %v; want %+v, %v", tt.name, got, ok, tt.want, tt.ok)
		}
	}
	if got := c.Databases["*"]; got.DBName != "" || got.PoolSize != 0 || got.MinPoolSize != InheritMinPoolSize {
		t.Errorf("lookup modified the stored wildcard entry: %+v", got)
	}

	noWildcard := mustParse(t, minimalDB)
	if _, ok := noWildcard.LookupDatabase("other"); ok {
		t.Error("LookupDatabase found an unknown database without a wildcard")
	}
}

func TestPoolModeFor(t *testing.T) {
	c := mustParse(t, `
pool_mode = "transaction"
[databases.sess]
pool_mode = "session"
[databases.plain]
[users.stmt]
password = "x"
pool_mode = "statement"
[users.plain]
password = "x"
`)
	tests := []struct{ db, user, want string }{
		{"plain", "plain", "transaction"},  // global
		{"sess", "plain", "session"},       // database over global
		{"plain", "stmt", "statement"},     // user over global
		{"sess", "stmt", "statement"},      // user over database
		{"sess", "nobody", "session"},      // unknown user
		{"plain", "nobody", "transaction"}, // unknown user, global
	}
	for _, tt := range tests {
		raw := c.Databases[tt.db]
		if got := c.PoolModeFor(raw, tt.user); got != tt.want {
			t.Errorf("PoolModeFor(raw %s, %s) = %s, want %s", tt.db, tt.user, got, tt.want)
		}
		resolved, _ := c.LookupDatabase(tt.db)
		if got := c.PoolModeFor(resolved, tt.user); got != tt.want {
			t.Errorf("PoolModeFor(resolved %s, %s) = %s, want %s", tt.db, tt.user, got, tt.want)
		}
	}
}

func TestExampleFile(t *testing.T) {
	s, err := Load("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	c := s.Config
	db, ok := c.LookupDatabase("app")
	if !ok || db.Host != "127.0.0.1" || db.Port != 5432 {
		t.Errorf("app = %+v, %v", db, ok)
	}
	if _, ok := c.Databases[WildcardDatabase]; !ok {
		t.Error("example has no wildcard database")
	}
	// The example's SCRAM secret must really be that of the password "alice".
	alice := c.Users["alice"].Password
	sec, err := auth.ParseSecret(alice)
	if err != nil {
		t.Fatal(err)
	}
	if sec.Kind != auth.SecretSCRAM {
		t.Fatalf("alice's password is a %v secret, want scram-sha-256", sec.Kind)
	}
	if got := scramSecret(t, "alice", sec.SCRAM.Salt, sec.SCRAM.Iterations); got != alice {
		t.Errorf("alice's secret does not match the password \"alice\":\n got %s\nwant %s", alice, got)
	}
	// Every key of the schema is documented (and set) in the example.
	data, err := os.ReadFile("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range topKeys {
		if !bytes.Contains(data, []byte("\n"+k+" = ")) && k != "databases" && k != "users" && k != "peers" {
			t.Errorf("example does not set %s", k)
		}
	}
	for _, k := range append(append(append([]string{}, dbKeys...), userKeys...), peerKeys...) {
		if !bytes.Contains(data, []byte("#   "+k+" ")) {
			t.Errorf("example does not document %s", k)
		}
	}
}

// scramSecret computes a SCRAM-SHA-256 secret as Postgres stores it.
func scramSecret(t *testing.T, password string, salt []byte, iter int) string {
	t.Helper()
	salted, err := pbkdf2.Key(sha256.New, password, salt, iter, 32)
	if err != nil {
		t.Fatal(err)
	}
	mac := func(key []byte, msg string) []byte {
		h := hmac.New(sha256.New, key)
		h.Write([]byte(msg))
		return h.Sum(nil)
	}
	stored := sha256.Sum256(mac(salted, "Client Key"))
	server := mac(salted, "Server Key")
	return formatSCRAM(iter, salt, stored[:], server)
}

func TestLoadErrorsMentionPath(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "missing.toml")
	if _, err := Load(missing); err == nil || !strings.Contains(err.Error(), missing) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) error = %v", err)
	}
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("pool_mode = \"x\"\n"+minimalDB), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(bad)
	if err == nil || !strings.Contains(err.Error(), bad) || !strings.Contains(err.Error(), "pool_mode:") {
		t.Errorf("Load(bad) error = %v", err)
	}
}

func TestRedacted(t *testing.T) {
	c := mustParse(t, `
[databases.app]
password = "dbsecret"
[databases.nopw]
[users.alice]
password = "alicesecret"
`)
	r := c.Redacted()
	if r.Databases["app"].Password != "***" || r.Users["alice"].Password != "***" {
		t.Errorf("passwords not redacted: %+v %+v", r.Databases, r.Users)
	}
	if r.Databases["nopw"].Password != "" {
		t.Errorf("empty password redacted to %q", r.Databases["nopw"].Password)
	}
	if c.Databases["app"].Password != "dbsecret" || c.Users["alice"].Password != "alicesecret" {
		t.Error("Redacted modified the original")
	}
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(r); err != nil {
		t.Fatal(err)
	}
	if s := buf.String(); strings.Contains(s, "secret") {
		t.Errorf("encoded redacted config leaks a password:\n%s", s)
	}
	// Deep copy: changing the copy leaves the original alone.
	r.Listen[0] = "changed"
	r.Databases["new"] = Database{}
	if c.Listen[0] == "changed" || len(c.Databases) != 2 {
		t.Error("Redacted shares memory with the original")
	}
}

func TestEncodeRoundTrip(t *testing.T) {
	s, err := Load("../config.example.toml")
	if err != nil {
		t.Fatal(err)
	}
	c := s.Config
	c.IgnoreStartupParameters = []string{"extra_float_digits"}
	c.ServerCheckDelay = Duration(1500 * time.Millisecond)
	c.MaxMessageSize = 1000 * KiB
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(c); err != nil {
		t.Fatal(err)
	}
	back, err := Parse(buf.Bytes())
	if err != nil {
		t.Fatalf("re-parse of encoded config: %v\n%s", err, buf.String())
	}
	if !reflect.DeepEqual(back, c) {
		t.Fatalf("round trip changed the config:\n got %+v\nwant %+v", back, c)
	}
}

func TestHelpers(t *testing.T) {
	c := Default()
	if got := c.UnixSocketPath(); got != "" {
		t.Errorf("UnixSocketPath without dir = %q", got)
	}
	c.UnixSocketDir = "/run/mux"
	c.Listen = []string{"[::1]:7000", "127.0.0.1:7001"}
	if got := c.UnixSocketPath(); got != "/run/mux/.s.PGSQL.7000" {
		t.Errorf("UnixSocketPath = %q", got)
	}
	c.Listen = nil
	if got := c.UnixSocketPath(); got != "/run/mux/.s.PGSQL.6432" {
		t.Errorf("UnixSocketPath with no listen = %q", got)
	}
	for in, want := range map[string]os.FileMode{"0777": 0o777, "700": 0o700, "0o660": 0o660, "bad": 0o777} {
		c.UnixSocketMode = in
		if got := c.UnixSocketFileMode(); got != want {
			t.Errorf("UnixSocketFileMode(%q) = %o, want %o", in, got, want)
		}
	}
	c.IgnoreStartupParameters = []string{"Extra_Float_Digits"}
	if !c.IgnoresStartupParameter("extra_float_digits") || c.IgnoresStartupParameter("search_path") {
		t.Error("IgnoresStartupParameter is wrong")
	}
}

func TestValidateProgrammatic(t *testing.T) {
	c := Default()
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "databases:") {
		t.Fatalf("Validate without databases = %v", err)
	}
	c.Databases["app"] = Database{Host: "localhost", Port: 5432}
	c.AuthType = AuthTrust
	c.Users["bob"] = User{}
	if err := c.Validate(); err != nil {
		t.Fatalf("Validate = %v", err)
	}
	if db, _ := c.LookupDatabase("app"); db.MinPoolSize != 0 || db.PoolSize != 20 {
		t.Errorf("LookupDatabase = %+v", db)
	}
}
