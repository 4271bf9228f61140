package session

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/sqllex"
)

// findWordsSlowly is FindWords by its definition: one ASCII-lower-cased
// copy, one search per word.
func findWordsSlowly(sql []byte) Words {
	low := make([]byte, len(sql))
	for i, c := range sql {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	var w Words
	if bytes.Contains(low, []byte(`u&"`)) {
		w |= WordSetConfig | WordAdvisory
	}
	for word, bits := range map[string]Words{
		"listen": WordListen | WordLeading, "set_config": WordSetConfig | WordLeading,
		"advisory": WordAdvisory, "deallocate": WordDeallocate, "discard": WordDiscard | WordLeading,
		"set": WordLeading, "do": WordLeading, "call": WordLeading, "create": WordLeading,
		"declare": WordLeading, "prepare": WordLeading, "load": WordLeading,
	} {
		if bytes.Contains(low, []byte(word)) {
			w |= bits
		}
	}
	return w
}

func TestFindWords(t *testing.T) {
	for _, tc := range []struct {
		sql  string
		want Words
	}{
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 1", 0},
		{"INSERT INTO t VALUES (1)", 0},
		{"LISTEN x", WordListen | WordLeading},
		{"select 1; unListen", WordListen | WordLeading},
		{"liste", 0},
		{"SELECT SET_CONFIG('a', 'b', false)", WordSetConfig | WordLeading},
		{"select setconfig", WordLeading},
		{"SELECT pg_advisory_lock(1)", WordAdvisory},
		{"DEALLOCATE ALL; DISCARD ALL", WordDeallocate | WordDiscard | WordLeading},
		{"discarddeallocate", WordDeallocate | WordDiscard | WordLeading},
		{"dealloc discar", 0},
		{"RESET ALL", WordLeading},
		{"DO $$ BEGIN END $$", WordLeading},
		{"cAll p()", WordLeading},
		{"create temp table t()", WordLeading},
		{"declare c cursor with hold for select 1", WordLeading},
		{"PREPARE p AS SELECT 1", WordLeading},
		{"LOAD 'x'", WordLeading},
		{`SELECT U&"pg_\0061dvisory_lock"(1)`, WordSetConfig | WordAdvisory},
		{`select u&"x"`, WordSetConfig | WordAdvisory},
		{`SELECT U&'x', u&`, 0},
		{"d", 0},
		{"", 0},
		{"\xffLISTEN\x00advisory", WordListen | WordLeading | WordAdvisory},
		// ASCII folding only, as Postgres folds keywords and identifiers:
		// the long s (U+017F) is not an s.
		{"\u017fet_config", 0},
	} {
		if got := FindWords([]byte(tc.sql)); got != tc.want {
			t.Errorf("FindWords(%q) = %05b, want %05b", tc.sql, got, tc.want)
		}
		if got := findWordsSlowly([]byte(tc.sql)); got != tc.want {
			t.Errorf("findWordsSlowly(%q) = %05b, want %05b", tc.sql, got, tc.want)
		}
	}
}

// FuzzRefuseListen checks the Query/Parse inspection never panics and only
// ever produces a well-formed message of the same type.
func FuzzRefuseListen(f *testing.F) {
	f.Add([]byte("LISTEN x"), false)
	f.Add([]byte("select 'listen'; listen y"), true)
	f.Add([]byte("/* listen */ select 1"), false)
	f.Fuzz(func(t *testing.T, sql []byte, parse bool) {
		if got, want := FindWords(sql), findWordsSlowly(sql); got != want {
			t.Fatalf("FindWords(%q) = %05b, want %05b", sql, got, want)
		}
		var msg []byte
		if parse {
			body := append([]byte("s1\x00"), sql...)
			body = append(body, 0, 0, 0)
			msg = append([]byte{'P', 0, 0, 0, 0}, body...)
		} else {
			msg = append([]byte{'Q', 0, 0, 0, 0}, sql...)
			msg = append(msg, 0)
		}
		binary.BigEndian.PutUint32(msg[1:5], uint32(len(msg)-1))
		out := RefuseListen(msg, sqllex.Options{StandardConformingStrings: true})
		if out == nil {
			return
		}
		if FindWords(sql)&WordListen == 0 {
			// Callers skip RefuseListen when FindWords sees no "listen".
			t.Fatalf("RefuseListen replaced %q, which FindWords passes over", sql)
		}
		typ, l := wire.Header(out)
		if typ != msg[0] || l != len(out)-1 {
			t.Fatalf("malformed replacement %q", out)
		}
	})
}
