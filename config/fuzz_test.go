package config

import (
	"os"
	"testing"
)

func FuzzParse(f *testing.F) {
	if example, err := os.ReadFile("../config.example.toml"); err == nil {
		f.Add(example)
	}
	f.Add([]byte(""))
	f.Add([]byte("[databases.app]\n"))
	f.Add([]byte("listen = []\nunix_socket_dir = \"/tmp\"\n[databases.\"*\"]\nport = 5433\n"))
	f.Add([]byte("server_lifetime = 30\nmax_message_size = \"1GB\"\n[databases.app]\nhots = 1\n"))
	f.Add([]byte("databases = { app = { port = 70000, min_pool_size = -2 } }\nusers.bob.password = \"md5zz\"\n"))
	f.Add([]byte("[users.a]\npassword = \"SCRAM-SHA-256$1:AA==$AA==:AA==\"\n"))
	f.Add([]byte("[[databases]]\nhost = 1\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := Parse(data)
		if err != nil {
			if c != nil {
				t.Fatal("Parse returned a config and an error")
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("Parse accepted a config that Validate rejects: %v", err)
		}
		_ = c.Redacted()
		for name := range c.Databases {
			if _, ok := c.LookupDatabase(name); !ok && name != "" {
				t.Fatalf("LookupDatabase(%q) failed for a configured database", name)
			}
		}
	})
}
