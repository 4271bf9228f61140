package pgbouncerconf

import (
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/userlist"
)

// checkConverted fails unless mux accepts a converted configuration. TLS
// files named by the input do not exist, so errors about them are allowed.
func checkConverted(t *testing.T, res *Result) {
	t.Helper()
	_, err := config.Parse(res.TOML)
	if err == nil {
		return
	}
	for line := range strings.SplitSeq(err.Error(), "\n") {
		key, _, _ := strings.Cut(line, ":")
		if !strings.HasSuffix(key, "_file") {
			t.Fatalf("config.Parse rejects the converted config:\n%s\nerror: %v", res.TOML, err)
		}
	}
}

func FuzzParseINI(f *testing.F) {
	for _, name := range []string{"full.ini", "packaged.ini", "local.ini"} {
		if data, err := os.ReadFile(filepath.Join("testdata", name)); err == nil {
			f.Add(data)
		}
	}
	f.Add([]byte(base))
	f.Add([]byte("[databases]\n\"a\"\"b\" = host=x port=1 user=u password='p''w' pool_size=3 min_pool_size=9\n'c' =\n* = host=h,i\n"))
	f.Add([]byte("[pgbouncer]\n%include inc.ini\nlisten_addr = *,::1\nauth_type = trust\n[users]\nu = pool_mode=session\n"))
	f.Add([]byte("[pgbouncer]\n%include loop.ini\n"))
	f.Add([]byte("[pgbouncer]\nauth_user = alice\nauth_query = SELECT $1\nauth_dbname = app\nauth_type = hba\nauth_hba_file = x\n[databases]\napp = host=h auth_user=alice dbname=d\n"))
	f.Add([]byte("[pgbouncer]\nunix_socket_mode = 01777\nserver_lifetime = 0.5\nmax_packet_size = 10\nclient_tls_protocols = all,!tlsv1.3\n"))
	// Included files come from memory, not the disk.
	fsys := fstest.MapFS{
		"inc.ini":      {Data: []byte("verbose = 2\n[databases]\nx = host=y\n%include sub/deep.ini\n")},
		"sub/deep.ini": {Data: []byte("[users]\nbob = pool_mode=statement\n")},
		"loop.ini":     {Data: []byte("%include loop.ini\n")},
	}
	open := func(path string) ([]byte, error) {
		return fs.ReadFile(fsys, strings.TrimPrefix(filepath.ToSlash(filepath.Clean(path)), "/"))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		ini, err := parseINI(data, "fuzz.ini", open)
		if err != nil {
			if ini != nil {
				t.Fatal("parseINI returned an INI and an error")
			}
			return
		}
		for section, entries := range ini.Sections {
			if section == "" || section != strings.ToLower(section) {
				t.Fatalf("section name %q", section)
			}
			for _, kv := range entries {
				if kv.Key == "" || kv.Line < 1 || kv.File == "" {
					t.Fatalf("entry %+v", kv)
				}
				if section != "databases" && section != "users" && kv.Key != strings.ToLower(kv.Key) {
					t.Fatalf("setting name %q is not lower-cased", kv.Key)
				}
				if strings.ContainsAny(kv.Value, "\n") {
					t.Fatalf("value %q spans lines", kv.Value)
				}
			}
		}
		res, err := Convert(ini, []userlist.Entry{{User: "alice", Secret: "alice-pw"}})
		if err != nil {
			return
		}
		checkConverted(t, res)
	})
}

// FuzzConvertUsers checks that whatever auth_file the parser accepts
// converts into a configuration mux accepts. The parser itself is fuzzed in
// package userlist.
func FuzzConvertUsers(f *testing.F) {
	if data, err := os.ReadFile(filepath.Join("testdata", "userlist.txt")); err == nil {
		f.Add(data)
	}
	f.Add([]byte("\"a\" \"b\"\n; c\n# d\n\n\"e\"\"f\" \"g\"\"\" rest\r\n"))
	f.Add([]byte("\"\" \"\"\n\"x\"\t\"md5512b4c65b87eac3465c68e92db259eba\"\n"))
	f.Add([]byte("\"u\" \"SCRAM-SHA-256$4096:c2FsdA==$a2V5:a2V5\"\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		entries, err := userlist.Parse(strings.NewReader(string(data)), "fuzz.txt")
		if err != nil {
			return
		}
		authType := []string{"md5", "scram-sha-256", "trust"}[len(data)%3]
		res, err := Convert(mustINI(t, base+"auth_type = "+authType+"\n"), entries)
		if err != nil {
			t.Fatalf("Convert: %v", err)
		}
		checkConverted(t, res)
	})
}
