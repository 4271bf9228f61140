package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRunExitCodes(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.toml")
	if err := os.WriteFile(bad, []byte("listen = [\"127.0.0.1:6432\"]\npool_mode = \"txn\"\n[databases.app]\nhots = \"x\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		args   []string
		code   int
		output string
	}{
		{"version", []string{"-version"}, exitOK, "mux "},
		{"valid config", []string{"-check-config", "../../config.example.toml"}, exitOK, "is valid"},
		{"invalid config names keys", []string{"-check-config", bad}, exitUsage, `pool_mode`},
		{"unknown key named", []string{"-check-config", bad}, exitUsage, `databases.app.hots`},
		{"missing file", []string{"-check-config", filepath.Join(dir, "nope.toml")}, exitUsage, "nope.toml"},
		{"no config", nil, exitUsage, "-config FILE is required"},
		{"bad flag", []string{"-nope"}, exitUsage, "flag provided but not defined"},
		{"run with invalid config", []string{"-config", bad}, exitUsage, "pool_mode"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(tc.args, &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit code %d, want %d (stderr: %s)", code, tc.code, stderr.String())
			}
			if out := stdout.String() + stderr.String(); !strings.Contains(out, tc.output) {
				t.Fatalf("output %q lacks %q", out, tc.output)
			}
		})
	}
}
