package pgbouncerconf

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/muxpg/mux/config"
)

// meaningless are the PgBouncer 1.25 settings that mean nothing for mux,
// with a word of the reason import-pgbouncer gives. Every other setting of
// testdata/pgbouncer-1.25.ini must be carried over. The README's
// import-pgbouncer section lists the same settings.
var meaningless = map[string]string{
	"logfile":                "stderr",
	"pidfile":                "service manager",
	"user":                   "does not switch users",
	"conffile":               "reloads the file it was started with",
	"service_name":           "Windows",
	"job_name":               "Windows",
	"syslog":                 "stderr",
	"syslog_ident":           "stderr",
	"syslog_facility":        "stderr",
	"dns_max_ttl":            "does not cache DNS",
	"dns_nxdomain_ttl":       "does not cache DNS",
	"dns_zone_check_period":  "does not cache DNS",
	"resolv_conf":            "resolver",
	"client_tls13_ciphers":   "not configurable",
	"server_tls13_ciphers":   "not configurable",
	"client_tls_dheparams":   "DHE",
	"suspend_timeout":        "SUSPEND",
	"pkt_buf":                "buffers",
	"sbuf_loopcnt":           "cannot stall",
	"so_reuseport":           "one process",
	"listen_backlog":         "somaxconn",
	"track_extra_parameters": "carries every setting",
}

// unusedWith are the settings PgBouncer itself ignores under an auth_type:
// the ini sets them all, so whichever auth_type it names, some go unused.
var unusedWith = map[string][]string{
	"hba":  {"auth_ldap_options"},
	"ldap": {"auth_hba_file", "auth_ident_file"},
}

// TestImport125 imports a pgbouncer.ini that sets every setting of
// PgBouncer 1.25's documentation, once with auth_type hba and once with
// ldap, and checks what is not carried over.
func TestImport125(t *testing.T) {
	for authType, unused := range unusedWith {
		t.Run(authType, func(t *testing.T) { import125(t, authType, unused) })
	}
}

func import125(t *testing.T, authType string, unused []string) {
	dir := t.TempDir()
	for _, name := range []string{"pgbouncer-1.25.ini", "userlist-1.25.txt"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		text := strings.ReplaceAll(string(data), "@DIR@", dir)
		text = strings.Replace(text, "\nauth_type = hba\n", "\nauth_type = "+authType+"\n", 1)
		if authType == "ldap" {
			// PgBouncer refuses auth_user with ldap (the server login
			// takes the client's password), and so does mux.
			text = strings.Replace(text, "\nauth_user = postgres\n", "\n", 1)
		}
		writeFile(t, filepath.Join(dir, name), text)
	}
	for _, name := range []string{"server.key", "server.crt", "ca.crt", "client.key", "client.crt"} {
		writeFile(t, filepath.Join(dir, name), "placeholder\n")
	}
	writeFile(t, filepath.Join(dir, "hba.conf"), "local all all peer map=local\nhostssl all all 0.0.0.0/0 cert map=certs\nhost all all 0.0.0.0/0 scram-sha-256\n")
	writeFile(t, filepath.Join(dir, "ident.conf"), "local root postgres\ncerts /^(.*)@example\\.net$ \\1\n")
	res, err := Import(filepath.Join(dir, "pgbouncer-1.25.ini"), "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := config.Parse(res.TOML); err != nil {
		t.Fatalf("config.Parse:\n%s\n%v", res.TOML, err)
	}
	seen := map[string]bool{}
	for _, n := range res.Notes {
		key, _, _ := strings.Cut(n, " ")
		reason, ok := meaningless[key]
		if slices.Contains(unused, key) {
			reason, ok = "not used, because auth_type is not", true
		}
		if !ok {
			t.Errorf("not carried over, but means something for mux: %s", n)
			continue
		}
		if !strings.Contains(n, reason) {
			t.Errorf("note for %s does not give its reason (%q): %s", key, reason, n)
		}
		seen[key] = true
	}
	for key := range meaningless {
		if !seen[key] {
			t.Errorf("%s: no note (carried over now? then take it off the list)", key)
		}
	}
	for _, key := range unused {
		if !seen[key] {
			t.Errorf("%s: no note (carried over now? then take it off the list)", key)
		}
	}
}
