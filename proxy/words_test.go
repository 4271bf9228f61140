package proxy

import (
	"bytes"
	"testing"
)

// findWordsSlowly is findWords by its definition: one ASCII-lower-cased
// copy, one search per word.
func findWordsSlowly(sql []byte) wordSet {
	low := make([]byte, len(sql))
	for i, c := range sql {
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		low[i] = c
	}
	var w wordSet
	if bytes.Contains(low, []byte(`u&"`)) {
		w |= wordSetConfig | wordAdvisory
	}
	for word, bits := range map[string]wordSet{
		"listen": wordListen | wordLeading, "set_config": wordSetConfig | wordLeading,
		"advisory": wordAdvisory, "deallocate": wordDeallocate, "discard": wordDiscard | wordLeading,
		"set": wordLeading, "do": wordLeading, "call": wordLeading, "create": wordLeading,
		"declare": wordLeading, "prepare": wordLeading, "load": wordLeading,
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
		want wordSet
	}{
		{"SELECT abalance FROM pgbench_accounts WHERE aid = 1", 0},
		{"INSERT INTO t VALUES (1)", 0},
		{"LISTEN x", wordListen | wordLeading},
		{"select 1; unListen", wordListen | wordLeading},
		{"liste", 0},
		{"SELECT SET_CONFIG('a', 'b', false)", wordSetConfig | wordLeading},
		{"select setconfig", wordLeading},
		{"SELECT pg_advisory_lock(1)", wordAdvisory},
		{"DEALLOCATE ALL; DISCARD ALL", wordDeallocate | wordDiscard | wordLeading},
		{"discarddeallocate", wordDeallocate | wordDiscard | wordLeading},
		{"dealloc discar", 0},
		{"RESET ALL", wordLeading},
		{"DO $$ BEGIN END $$", wordLeading},
		{"cAll p()", wordLeading},
		{"create temp table t()", wordLeading},
		{"declare c cursor with hold for select 1", wordLeading},
		{"PREPARE p AS SELECT 1", wordLeading},
		{"LOAD 'x'", wordLeading},
		{`SELECT U&"pg_\0061dvisory_lock"(1)`, wordSetConfig | wordAdvisory},
		{`select u&"x"`, wordSetConfig | wordAdvisory},
		{`SELECT U&'x', u&`, 0},
		{"d", 0},
		{"", 0},
		{"\xffLISTEN\x00advisory", wordListen | wordLeading | wordAdvisory},
		// ASCII folding only, as Postgres folds keywords and identifiers:
		// the long s (U+017F) is not an s.
		{"\u017fet_config", 0},
	} {
		if got := findWords([]byte(tc.sql)); got != tc.want {
			t.Errorf("findWords(%q) = %05b, want %05b", tc.sql, got, tc.want)
		}
		if got := findWordsSlowly([]byte(tc.sql)); got != tc.want {
			t.Errorf("findWordsSlowly(%q) = %05b, want %05b", tc.sql, got, tc.want)
		}
	}
}
