package pgbouncerconf

import (
	"bytes"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"strings"

	"github.com/muxpg/mux/hba"
	"github.com/muxpg/mux/userlist"
)

// Import does the whole job of `mux import-pgbouncer pgbouncer.ini
// [userlist.txt]`: it reads the ini file at iniPath and the auth_file at
// authPath and converts them with Convert. If authPath is empty, the ini
// file's auth_file setting is used instead, taken relative to the directory
// of the file that sets it (PgBouncer's ~ and ~user forms are expanded); if
// that is not set either, no users are imported. An auth_hba_file is
// checked with mux's rules parser, and problems are reported in the notes.
func Import(iniPath, authPath string) (*Result, error) {
	f, err := os.Open(iniPath)
	if err != nil {
		return nil, err
	}
	ini, err := ParseINI(f, iniPath)
	f.Close()
	if err != nil {
		return nil, err
	}
	if authPath == "" {
		if kv, ok := ini.Get("pgbouncer", "auth_file"); ok && kv.Value != "" {
			if authPath, err = expandHome(kv.Value); err != nil {
				return nil, fmt.Errorf("%s:%d: auth_file: %w", kv.File, kv.Line, err)
			}
			if !filepath.IsAbs(authPath) {
				authPath = filepath.Join(filepath.Dir(kv.File), authPath)
			}
		}
	}
	var entries []userlist.Entry
	if authPath != "" {
		data, err := readRegularFile(authPath)
		if err != nil {
			return nil, fmt.Errorf("auth_file: %w", err)
		}
		if entries, err = userlist.Parse(bytes.NewReader(data), authPath); err != nil {
			return nil, err
		}
		if entries == nil {
			entries = []userlist.Entry{} // read, but empty
		}
	}
	return convert(ini, entries, func(path string) error {
		_, err := hba.Load(path)
		return err
	})
}

// expandHome expands a leading ~ or ~user as PgBouncer does for file names.
func expandHome(path string) (string, error) {
	if !strings.HasPrefix(path, "~") {
		return path, nil
	}
	name, rest, _ := strings.Cut(path[1:], "/")
	var home string
	if name == "" {
		h, err := os.UserHomeDir()
		if err != nil {
			return "", err
		}
		home = h
	} else {
		u, err := user.Lookup(name)
		if err != nil {
			return "", err
		}
		home = u.HomeDir
	}
	return filepath.Join(home, rest), nil
}
