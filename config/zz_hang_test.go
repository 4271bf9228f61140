package config

import (
	"fmt"
	"os"
	"testing"
	"time"
)

func FuzzHang(f *testing.F) {
	if example, err := os.ReadFile("../config.example.toml"); err == nil {
		f.Add(example)
	}
	f.Add([]byte("[databases.app]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		start := time.Now()
		Parse(data)
		if d := time.Since(start); d > 50*time.Millisecond {
			os.WriteFile(fmt.Sprintf("/tmp/slow-%d.toml", d.Milliseconds()), data, 0o644)
		}
	})
}
