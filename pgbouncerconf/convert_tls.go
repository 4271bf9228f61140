package pgbouncerconf

// TLS settings: sslmode, files and protocol versions.

import (
	"os"
	"slices"
	"strings"

	"github.com/muxpg/mux/config"
)

func (c *converter) tlsSettings() {
	c.section("TLS")
	raw, kv, ok := c.value("client_tls_sslmode", "disable")
	mode := strings.ToLower(strings.TrimSpace(raw))
	if !slices.Contains([]string{"disable", "allow", "prefer", "require", "verify-ca", "verify-full"}, mode) {
		c.fail(kv, "unknown client_tls_sslmode %q", raw)
		mode = "disable"
	}
	c.add("client_tls_sslmode", tomlString(mode), c.origin(kv, ok))
	key, keyKV, keyOK := c.value("client_tls_key_file", "")
	cert, certKV, certOK := c.value("client_tls_cert_file", "")
	ca, caKV, caOK := c.value("client_tls_ca_file", "")
	if mode != "disable" && (key == "" || cert == "") {
		c.fail(kv, "client_tls_sslmode = %s needs client_tls_key_file and client_tls_cert_file", mode)
	}
	c.addString("client_tls_key_file", key, c.origin(keyKV, keyOK), keyKV)
	c.addString("client_tls_cert_file", cert, c.origin(certKV, certOK), certKV)
	c.addCAFile("client_tls_ca_file", mode, ca, caKV, caOK)
	c.tlsVersion("client_tls_protocols", "client_tls_min_version")
	if raw, kv, ok := c.value("client_tls_ecdhcurve", "auto"); ok {
		if _, err := config.ECDHCurves(raw); err != nil {
			c.fail(kv, "%v", err)
		}
		c.addString("client_tls_ecdhcurve", raw, c.origin(kv, ok), kv)
	}

	raw, kv, ok = c.value("server_tls_sslmode", "prefer")
	mode = strings.ToLower(strings.TrimSpace(raw))
	comment := c.origin(kv, ok)
	if !ok {
		comment += " since 1.21 (before: disable)"
	}
	switch mode {
	case "disable", "prefer", "require", "verify-ca", "verify-full":
	case "allow":
		c.noteSetting(kv, ok, "mux has no \"allow\" for servers; using prefer, which tries TLS first and falls back to plain TCP")
		mode, comment = "prefer", c.from(kv, ok)
	default:
		c.fail(kv, "unknown server_tls_sslmode %q", raw)
		mode = "disable"
	}
	c.add("server_tls_sslmode", tomlString(mode), comment)
	ca, caKV, caOK = c.value("server_tls_ca_file", "")
	c.addCAFile("server_tls_ca_file", mode, ca, caKV, caOK)
	key, keyKV, keyOK = c.value("server_tls_key_file", "")
	cert, certKV, certOK = c.value("server_tls_cert_file", "")
	if (key == "") != (cert == "") {
		c.fail(certKV, "server_tls_key_file and server_tls_cert_file must be set together")
	}
	c.addString("server_tls_key_file", key, c.origin(keyKV, keyOK), keyKV)
	c.addString("server_tls_cert_file", cert, c.origin(certKV, certOK), certKV)
	c.tlsVersion("server_tls_protocols", "server_tls_min_version")
}

// systemCABundles are the usual locations of the system's CA certificates,
// which PgBouncer (through OpenSSL) uses when no CA file is configured.
var systemCABundles = []string{
	"/etc/ssl/certs/ca-certificates.crt", // Debian, Ubuntu, Alpine, Arch
	"/etc/pki/tls/certs/ca-bundle.crt",   // Fedora, RHEL
	"/etc/ssl/ca-bundle.pem",             // openSUSE
	"/etc/ssl/cert.pem",                  // macOS, BSDs
}

func systemCABundle() string {
	for _, p := range systemCABundles {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			return p
		}
	}
	return systemCABundles[0]
}

func (c *converter) addCAFile(key, mode, ca string, kv KV, ok bool) {
	comment := c.origin(kv, ok)
	if ca == "" && strings.HasPrefix(mode, "verify-") {
		ca = systemCABundle()
		c.note("%s: not set, so PgBouncer verified certificates against the system's CA store; mux needs a file and uses %s, check that it is the right one", key, ca)
		comment = "system CA store (not set in PgBouncer)"
	}
	c.addString(key, ca, comment, kv)
}

// tlsVersion maps a PgBouncer protocol list ("secure", "tlsv1.2,tlsv1.3",
// "all", ...) to the oldest TLS version mux accepts.
func (c *converter) tlsVersion(pgKey, muxKey string) {
	raw, kv, ok := c.value(pgKey, "secure")
	versions := map[string]bool{}
	all := []string{"tlsv1.0", "tlsv1.1", "tlsv1.2", "tlsv1.3"}
	for _, tok := range strings.FieldsFunc(strings.ToLower(raw), func(r rune) bool {
		return r == ',' || r == ':' || r == ' ' || r == '\t'
	}) {
		on := true
		if strings.HasPrefix(tok, "!") {
			on, tok = false, tok[1:]
		}
		var set []string
		switch tok {
		case "all", "legacy":
			set = all
		case "secure", "default":
			set = all[2:]
		case "tlsv1.0", "tlsv1", "tlsv1.1", "tlsv1.2", "tlsv1.3":
			if tok == "tlsv1" {
				tok = "tlsv1.0"
			}
			set = []string{tok}
		default:
			c.fail(kv, "unknown TLS protocol %q", tok)
			return
		}
		for _, v := range set {
			versions[v] = on
		}
	}
	min := ""
	for _, v := range all {
		if versions[v] {
			min = v
			break
		}
	}
	comment := c.from(kv, ok)
	switch min {
	case "":
		c.fail(kv, "no TLS protocol version is enabled")
		return
	case "tlsv1.0", "tlsv1.1":
		c.noteSetting(kv, ok, "mux does not speak TLS older than 1.2; using tlsv1.2 as the oldest version")
		min = "tlsv1.2"
	}
	if !versions["tlsv1.3"] {
		c.noteSetting(kv, ok, "mux cannot turn TLS 1.3 off; it is allowed too")
	}
	c.add(muxKey, tomlString(min), comment)
}
