package session

import (
	"testing"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/sqllex"
)

func TestClassifyRead(t *testing.T) {
	opt := sqllex.Options{StandardConformingStrings: true}
	cases := []struct {
		sql  string
		want ReadClass
	}{
		{"SELECT 1", ReadAutocommit},
		{"select * from t where a in (select b from u) order by 1", ReadAutocommit},
		{"WITH x AS (SELECT 1) SELECT * FROM x", ReadAutocommit},
		{"VALUES (1), (2)", ReadAutocommit},
		{"SHOW work_mem", ReadAutocommit},
		{"TABLE t", ReadAutocommit},
		{"SELECT count(*), pg_catalog.now() FROM t; SELECT 2", ReadAutocommit},
		{"BEGIN; SELECT 1; COMMIT", ReadAutocommit},
		{"BEGIN READ ONLY", ReadOnlyBlock},
		{"START TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY", ReadOnlyBlock},
		{"begin; set transaction read only; select 1", ReadOnlyBlock},
		{"BEGIN READ ONLY; SELECT 1; COMMIT AND NO CHAIN", ReadAutocommit},
		{"SELECT 'INSERT INTO t' AS s -- UPDATE", ReadAutocommit},
		{"SELECT f()", ReadAutocommit}, // the replica refuses a write in f: re-run

		{"", ReadWrite},
		{"BEGIN", ReadWrite},
		{"BEGIN READ WRITE", ReadWrite},
		{"BEGIN ISOLATION LEVEL SERIALIZABLE READ ONLY", ReadWrite},
		{"BEGIN READ ONLY; COMMIT AND CHAIN", ReadWrite},
		{"BEGIN; SELECT 1", ReadWrite},
		{"SET TRANSACTION READ ONLY; SET work_mem = '1MB'", ReadWrite},
		{"SET work_mem = '1MB'", ReadWrite},
		{"SET TRANSACTION SNAPSHOT '0001'", ReadWrite},
		{"INSERT INTO t VALUES (1)", ReadWrite},
		{"SELECT 1; INSERT INTO t VALUES (1)", ReadWrite},
		{"WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", ReadWrite},
		{"SELECT * INTO new FROM t", ReadWrite},
		{"SELECT * FROM t FOR UPDATE", ReadWrite},
		{"SELECT * FROM t FOR KEY SHARE", ReadWrite},
		{"SELECT nextval('s')", ReadWrite},
		{"SELECT pg_catalog.setval('s', 1)", ReadWrite},
		{"SELECT set_config('a.b', 'c', false)", ReadWrite},
		{"SELECT pg_advisory_lock(1)", ReadWrite},
		{`SELECT "nextval"('s')`, ReadWrite},
		{`SELECT U&"nextval"('s')`, ReadWrite},
		{"EXPLAIN ANALYZE DELETE FROM t", ReadWrite},
		{"ROLLBACK TO SAVEPOINT a", ReadWrite},
		{"show transaction_read_only", ReadWrite}, // pgx's read-write check: the primary's answer
		{"SHOW default_transaction_read_only", ReadWrite},
		{"SHOW in_hot_standby", ReadWrite},
		{"SELECT (1; 2)", ReadWrite},
	}
	for _, c := range cases {
		if got := ClassifyRead([]byte(c.sql), opt); got != c.want {
			t.Errorf("ClassifyRead(%q) = %v, want %v", c.sql, got, c.want)
		}
	}
	if got := ClassifyQuery(wire.AppendQuery(nil, "SELECT 1"), opt); got != ReadAutocommit {
		t.Errorf("ClassifyQuery(SELECT 1) = %v", got)
	}
	if got := ClassifyQuery([]byte{'P', 0, 0, 0, 4}, opt); got != ReadWrite {
		t.Errorf("ClassifyQuery(Parse) = %v", got)
	}
}
