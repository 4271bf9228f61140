package proxy

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgproto3"
)

// Prepared statements in transaction pool mode, driven message by message.
//
// Most scenarios run twice: once straight against Postgres (subtest
// "postgres", one session per client), which proves the expected message
// sequences are what Postgres itself sends, and once through mux (subtest
// "mux"), where the clients share servers.

// prepDialer opens one more client for a scenario.
type prepDialer func() *rawClient

// prepRun runs scenario against Postgres directly and then through a mux
// started with muxTop.
func prepRun(t *testing.T, muxTop string, scenario func(t *testing.T, dial prepDialer)) {
	t.Helper()
	t.Run("postgres", func(t *testing.T) {
		scenario(t, func() *rawClient { return prepDialDirect(t) })
	})
	t.Run("mux", func(t *testing.T) {
		m := startMux(t, muxTop)
		scenario(t, func() *rawClient { return dialRaw(t, m, "muxuser", "muxpass", "muxtest") })
	})
}

// prepDialDirect logs in to the test cluster itself as muxuser.
func prepDialDirect(t *testing.T) *rawClient {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	dsn := fmt.Sprintf("host=%s port=%d user=muxuser password=muxpass dbname=muxtest sslmode=disable", cluster.Host, cluster.Port)
	pc, err := pgconn.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect to postgres directly: %v", err)
	}
	hc, err := pc.Hijack()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { hc.Conn.Close() })
	return &rawClient{conn: hc.Conn, fe: hc.Frontend}
}

// Message constructors.

func prepParse(name, query string) *pgproto3.Parse {
	return &pgproto3.Parse{Name: name, Query: query}
}

func prepBind(stmt string) *pgproto3.Bind { return &pgproto3.Bind{PreparedStatement: stmt} }

func prepExec() *pgproto3.Execute { return &pgproto3.Execute{} }

func prepSync() *pgproto3.Sync { return &pgproto3.Sync{} }

func prepDescPortal() *pgproto3.Describe { return &pgproto3.Describe{ObjectType: 'P'} }

func prepDescStmt(name string) *pgproto3.Describe {
	return &pgproto3.Describe{ObjectType: 'S', Name: name}
}

func prepClose(name string) *pgproto3.Close { return &pgproto3.Close{ObjectType: 'S', Name: name} }

func prepQuery(sql string) *pgproto3.Query { return &pgproto3.Query{String: sql} }

// prepUse is Bind (unnamed portal) + Execute + Sync of statement name.
func prepUse(name string) []pgproto3.FrontendMessage {
	return []pgproto3.FrontendMessage{prepBind(name), prepExec(), prepSync()}
}

// prepMsgs flattens messages and slices of messages into one run.
func prepMsgs(parts ...any) []pgproto3.FrontendMessage {
	var out []pgproto3.FrontendMessage
	for _, p := range parts {
		switch v := p.(type) {
		case pgproto3.FrontendMessage:
			out = append(out, v)
		case []pgproto3.FrontendMessage:
			out = append(out, v...)
		default:
			panic(fmt.Sprintf("prepMsgs: %T", p))
		}
	}
	return out
}

// prepDescribe renders a backend message as a short string for comparing
// (short) and a longer one for failure messages (long).
func prepDescribe(msg pgproto3.BackendMessage) (short, long string) {
	switch m := msg.(type) {
	case *pgproto3.RowDescription:
		names := make([]string, len(m.Fields))
		for i, f := range m.Fields {
			names[i] = string(f.Name)
		}
		s := "RowDescription[" + strings.Join(names, ",") + "]"
		return s, s
	case *pgproto3.DataRow:
		vals := make([]string, len(m.Values))
		for i, v := range m.Values {
			if v == nil {
				vals[i] = "NULL"
			} else {
				vals[i] = string(v)
			}
		}
		s := "DataRow[" + strings.Join(vals, ",") + "]"
		return s, s
	case *pgproto3.CommandComplete:
		s := "CommandComplete(" + string(m.CommandTag) + ")"
		return s, s
	case *pgproto3.ErrorResponse:
		return "ErrorResponse(" + m.Code + ")", "ErrorResponse(" + m.Code + ": " + m.Message + ")"
	case *pgproto3.ReadyForQuery:
		s := "ReadyForQuery(" + string(m.TxStatus) + ")"
		return s, s
	}
	s := fmt.Sprintf("%T", msg)
	s = s[strings.LastIndex(s, ".")+1:]
	return s, s
}

// prepRound sends msgs in one write, reads replies until as many
// ReadyForQuery as msgs has Sync and Query messages, and checks them
// against want exactly. ParameterStatus and NoticeResponse are ignored.
// It returns the replies (short form).
func prepRound(t *testing.T, c *rawClient, step string, msgs []pgproto3.FrontendMessage, want ...string) []string {
	t.Helper()
	got, long := prepExchange(t, c, step, msgs)
	if !prepEqual(got, want) {
		t.Fatalf("%s:\n got: %s\nwant: %s", step, strings.Join(long, ", "), strings.Join(want, ", "))
	}
	return got
}

// prepExchange is prepRound without the check.
func prepExchange(t *testing.T, c *rawClient, step string, msgs []pgproto3.FrontendMessage) (got, long []string) {
	t.Helper()
	syncs := 0
	for _, m := range msgs {
		switch m.(type) {
		case *pgproto3.Sync, *pgproto3.Query:
			syncs++
		}
		c.fe.Send(m)
	}
	if err := c.fe.Flush(); err != nil {
		t.Fatalf("%s: send: %v", step, err)
	}
	_ = c.conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	for syncs > 0 {
		msg, err := c.fe.Receive()
		if err != nil {
			t.Fatalf("%s: receive after %s: %v", step, strings.Join(long, ", "), err)
		}
		switch msg.(type) {
		case *pgproto3.ParameterStatus, *pgproto3.NoticeResponse:
			continue
		case *pgproto3.ReadyForQuery:
			syncs--
		}
		s, l := prepDescribe(msg)
		got = append(got, s)
		long = append(long, l)
	}
	return got, long
}

// prepEqual compares replies with wanted ones; in a wanted DataRow, a
// value "*" matches any value.
func prepEqual(got, want []string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] == want[i] {
			continue
		}
		if !strings.HasPrefix(got[i], "DataRow[") || !strings.HasPrefix(want[i], "DataRow[") {
			return false
		}
		g := strings.Split(strings.TrimSuffix(strings.TrimPrefix(got[i], "DataRow["), "]"), ",")
		w := strings.Split(strings.TrimSuffix(strings.TrimPrefix(want[i], "DataRow["), "]"), ",")
		if len(g) != len(w) {
			return false
		}
		for j := range g {
			if w[j] != "*" && w[j] != g[j] {
				return false
			}
		}
	}
	return true
}

// prepQuiet checks that nothing more is owed to the client: a lone Sync
// gets exactly ReadyForQuery.
func prepQuiet(t *testing.T, c *rawClient, step string, status byte) {
	t.Helper()
	prepRound(t, c, step+" (then a lone Sync: nothing else pending)", prepMsgs(prepSync()),
		"ReadyForQuery("+string(status)+")")
}

// prepUnique returns a name unique to this run.
func prepUnique(prefix string) string {
	return prefix + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// Case 1: two clients, one server, the same statement name for different
// SQL; each gets its own rows and column names.
func TestPreparedSameNameTwoClients(t *testing.T) {
	prepRun(t, "default_pool_size = 1", func(t *testing.T, dial prepDialer) {
		a, b := dial(), dial()
		prepRound(t, a, "A: Parse S_1 'SELECT 1::int AS a' + use",
			prepMsgs(prepParse("S_1", "SELECT 1::int AS a"), prepBind("S_1"), prepDescPortal(), prepExec(), prepSync()),
			"ParseComplete", "BindComplete", "RowDescription[a]", "DataRow[1]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		prepRound(t, b, "B: Parse S_1 'SELECT 'x'::text AS b' + use",
			prepMsgs(prepParse("S_1", "SELECT 'x'::text AS b"), prepBind("S_1"), prepDescPortal(), prepExec(), prepSync()),
			"ParseComplete", "BindComplete", "RowDescription[b]", "DataRow[x]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		for i := 0; i < 5; i++ {
			prepRound(t, a, fmt.Sprintf("A: use S_1, round %d", i),
				prepMsgs(prepBind("S_1"), prepDescPortal(), prepExec(), prepSync()),
				"BindComplete", "RowDescription[a]", "DataRow[1]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
			prepRound(t, b, fmt.Sprintf("B: use S_1, round %d", i),
				prepMsgs(prepBind("S_1"), prepDescPortal(), prepExec(), prepSync()),
				"BindComplete", "RowDescription[b]", "DataRow[x]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
			prepRound(t, b, fmt.Sprintf("B: Describe S_1, round %d", i),
				prepMsgs(prepDescStmt("S_1"), prepSync()),
				"ParameterDescription", "RowDescription[b]", "ReadyForQuery(I)")
			prepRound(t, a, fmt.Sprintf("A: Describe S_1, round %d", i),
				prepMsgs(prepDescStmt("S_1"), prepSync()),
				"ParameterDescription", "RowDescription[a]", "ReadyForQuery(I)")
		}
	})
}

// Case 2: a name is reused after Close with new text.
func TestPreparedReuseNameAfterClose(t *testing.T) {
	prepRun(t, "default_pool_size = 1", func(t *testing.T, dial prepDialer) {
		a, b := dial(), dial()
		// B keeps "SELECT 1" under the same name, so the server copy is shared.
		prepRound(t, b, "B: Parse S_1 'SELECT 1' + Sync",
			prepMsgs(prepParse("S_1", "SELECT 1"), prepSync()), "ParseComplete", "ReadyForQuery(I)")
		prepRound(t, a, "A: Parse S_1 'SELECT 1' + use",
			prepMsgs(prepParse("S_1", "SELECT 1"), prepUse("S_1")),
			"ParseComplete", "BindComplete", "DataRow[1]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		prepRound(t, a, "A: Close S_1 + Sync",
			prepMsgs(prepClose("S_1"), prepSync()), "CloseComplete", "ReadyForQuery(I)")
		prepRound(t, a, "A: Parse S_1 'SELECT 2' + use",
			prepMsgs(prepParse("S_1", "SELECT 2"), prepUse("S_1")),
			"ParseComplete", "BindComplete", "DataRow[2]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		prepRound(t, b, "B: use S_1 (still 'SELECT 1')", prepUse("S_1"),
			"BindComplete", "DataRow[1]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		// All in one pipeline: Close, Parse with new text, use.
		prepRound(t, a, "A: Close S_1 + Parse S_1 'SELECT 3' + use, one pipeline",
			prepMsgs(prepClose("S_1"), prepParse("S_1", "SELECT 3"), prepUse("S_1")),
			"CloseComplete", "ParseComplete", "BindComplete", "DataRow[3]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		// Back to the first text, which B still holds on the server.
		prepRound(t, a, "A: Close S_1 + Parse S_1 'SELECT 1' + use, one pipeline",
			prepMsgs(prepClose("S_1"), prepParse("S_1", "SELECT 1"), prepUse("S_1")),
			"CloseComplete", "ParseComplete", "BindComplete", "DataRow[1]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		prepRound(t, b, "B: use S_1 again", prepUse("S_1"),
			"BindComplete", "DataRow[1]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
	})
}

// Case 3: a second Parse of a name without Close is 42P05, outside and
// inside a transaction block; the first statement survives.
func TestPreparedDuplicateName(t *testing.T) {
	prepRun(t, "default_pool_size = 1", func(t *testing.T, dial prepDialer) {
		a := dial()
		prepRound(t, a, "Parse S_1 'SELECT 1' + Sync",
			prepMsgs(prepParse("S_1", "SELECT 1"), prepSync()), "ParseComplete", "ReadyForQuery(I)")
		prepRound(t, a, "Parse S_1 'SELECT 2' again + Sync",
			prepMsgs(prepParse("S_1", "SELECT 2"), prepSync()), "ErrorResponse(42P05)", "ReadyForQuery(I)")
		prepRound(t, a, "Parse S_1 'SELECT 1' again (same text) + Sync",
			prepMsgs(prepParse("S_1", "SELECT 1"), prepSync()), "ErrorResponse(42P05)", "ReadyForQuery(I)")
		prepRound(t, a, "duplicate Parse followed by Bind/Execute in the same pipeline",
			prepMsgs(prepParse("S_1", "SELECT 2"), prepUse("S_1")), "ErrorResponse(42P05)", "ReadyForQuery(I)")
		prepRound(t, a, "use S_1 after the failed Parses", prepUse("S_1"),
			"BindComplete", "DataRow[1]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")

		prepRound(t, a, "BEGIN", prepMsgs(prepQuery("BEGIN")), "CommandComplete(BEGIN)", "ReadyForQuery(T)")
		prepRound(t, a, "in transaction: duplicate Parse S_1 + Sync",
			prepMsgs(prepParse("S_1", "SELECT 3"), prepSync()), "ErrorResponse(42P05)", "ReadyForQuery(E)")
		prepRound(t, a, "COMMIT of the failed transaction", prepMsgs(prepQuery("COMMIT")),
			"CommandComplete(ROLLBACK)", "ReadyForQuery(I)")
		prepRound(t, a, "use S_1 after the transaction", prepUse("S_1"),
			"BindComplete", "DataRow[1]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
	})
}

// Case 4: unknown statement names.
func TestPreparedUnknownName(t *testing.T) {
	prepRun(t, "default_pool_size = 1", func(t *testing.T, dial prepDialer) {
		a := dial()
		prepRound(t, a, "Bind nosuch + Execute + Sync", prepUse("nosuch"),
			"ErrorResponse(26000)", "ReadyForQuery(I)")
		prepRound(t, a, "Describe S nosuch + Sync", prepMsgs(prepDescStmt("nosuch"), prepSync()),
			"ErrorResponse(26000)", "ReadyForQuery(I)")
		prepRound(t, a, "Close S nosuch + Sync", prepMsgs(prepClose("nosuch"), prepSync()),
			"CloseComplete", "ReadyForQuery(I)")
		prepRound(t, a, "Parse S_1 + Close S nosuch + use S_1, one pipeline",
			prepMsgs(prepParse("S_1", "SELECT 1"), prepClose("nosuch"), prepUse("S_1")),
			"ParseComplete", "CloseComplete", "BindComplete", "DataRow[1]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		prepRound(t, a, "use S_1, then Bind nosuch, one pipeline",
			prepMsgs(prepBind("S_1"), prepExec(), prepBind("nosuch"), prepExec(), prepSync()),
			"BindComplete", "DataRow[1]", "CommandComplete(SELECT 1)", "ErrorResponse(26000)", "ReadyForQuery(I)")

		prepRound(t, a, "BEGIN", prepMsgs(prepQuery("BEGIN")), "CommandComplete(BEGIN)", "ReadyForQuery(T)")
		prepRound(t, a, "in transaction: Bind nosuch + Execute + Sync", prepUse("nosuch"),
			"ErrorResponse(26000)", "ReadyForQuery(E)")
		prepRound(t, a, "COMMIT of the failed transaction", prepMsgs(prepQuery("COMMIT")),
			"CommandComplete(ROLLBACK)", "ReadyForQuery(I)")
		prepRound(t, a, "BEGIN", prepMsgs(prepQuery("BEGIN")), "CommandComplete(BEGIN)", "ReadyForQuery(T)")
		prepRound(t, a, "in transaction: Describe S nosuch + Sync", prepMsgs(prepDescStmt("nosuch"), prepSync()),
			"ErrorResponse(26000)", "ReadyForQuery(E)")
		prepRound(t, a, "COMMIT of the failed transaction", prepMsgs(prepQuery("COMMIT")),
			"CommandComplete(ROLLBACK)", "ReadyForQuery(I)")
		prepRound(t, a, "use S_1 afterwards", prepUse("S_1"),
			"BindComplete", "DataRow[1]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
	})
}

// Case 5: a client's statement follows it to another server.
func TestPreparedFollowsClientAcrossServers(t *testing.T) {
	m := startMux(t, "default_pool_size = 2")
	a := dialRaw(t, m, "muxuser", "muxpass", "muxtest")
	b := dialRaw(t, m, "muxuser", "muxpass", "muxtest")
	c := dialRaw(t, m, "muxuser", "muxpass", "muxtest")
	const q = "SELECT 'five'::text AS v, pg_backend_pid()::text AS pid"
	got := prepRound(t, a, "A: Parse S_1 + use",
		prepMsgs(prepParse("S_1", q), prepBind("S_1"), prepDescPortal(), prepExec(), prepSync()),
		"ParseComplete", "BindComplete", "RowDescription[v,pid]", "DataRow[five,*]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
	pidA := prepDataRow(t, got, 3)[1]

	// Make the server A used busy in an open transaction.
	holder := prepBeginOn(t, pidA, b, c)

	got = prepRound(t, a, "A: use S_1 while its first server is in another client's transaction",
		prepMsgs(prepBind("S_1"), prepDescPortal(), prepExec(), prepSync()),
		"BindComplete", "RowDescription[v,pid]", "DataRow[five,*]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
	if pid := prepDataRow(t, got, 2)[1]; pid == pidA {
		t.Fatalf("A ran on server %s, which another client holds in a transaction", pid)
	}
	prepRound(t, a, "A: Describe S_1 on the second server", prepMsgs(prepDescStmt("S_1"), prepSync()),
		"ParameterDescription", "RowDescription[v,pid]", "ReadyForQuery(I)")
	prepRound(t, holder, "holder: COMMIT", prepMsgs(prepQuery("COMMIT")), "CommandComplete(COMMIT)", "ReadyForQuery(I)")
	for i := 0; i < 4; i++ {
		prepRound(t, a, fmt.Sprintf("A: use S_1 again, round %d", i),
			prepMsgs(prepBind("S_1"), prepDescPortal(), prepExec(), prepSync()),
			"BindComplete", "RowDescription[v,pid]", "DataRow[five,*]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
	}
}

// prepDataRow checks that got[i] is a DataRow and returns its values.
func prepDataRow(t *testing.T, got []string, i int) []string {
	t.Helper()
	if i >= len(got) || !strings.HasPrefix(got[i], "DataRow[") {
		t.Fatalf("no DataRow at %d in %v", i, got)
	}
	return strings.Split(strings.TrimSuffix(strings.TrimPrefix(got[i], "DataRow["), "]"), ",")
}

// prepBeginOn opens transactions on clients until one of them holds the
// server with backend pid, commits the others, and returns that client.
func prepBeginOn(t *testing.T, pid string, clients ...*rawClient) *rawClient {
	t.Helper()
	var others []*rawClient
	var holder *rawClient
	for i, c := range clients {
		got := prepRound(t, c, fmt.Sprintf("client %d: BEGIN; SELECT pg_backend_pid()", i),
			prepMsgs(prepQuery("BEGIN; SELECT pg_backend_pid()::text")),
			"CommandComplete(BEGIN)", "RowDescription[pg_backend_pid]", "DataRow[*]", "CommandComplete(SELECT 1)", "ReadyForQuery(T)")
		if prepDataRow(t, got, 2)[0] == pid {
			holder = c
			break
		}
		others = append(others, c)
	}
	if holder == nil {
		t.Fatalf("no client got the server with pid %s", pid)
	}
	for _, c := range others {
		prepRound(t, c, "COMMIT", prepMsgs(prepQuery("COMMIT")), "CommandComplete(COMMIT)", "ReadyForQuery(I)")
	}
	return holder
}

// Case 6: more statements than max_prepared_statements on one server.
func TestPreparedEviction(t *testing.T) {
	prepRun(t, "default_pool_size = 1\nmax_prepared_statements = 2", func(t *testing.T, dial prepDialer) {
		a, b := dial(), dial()
		for i := 1; i <= 3; i++ {
			name := "S_" + strconv.Itoa(i)
			prepRound(t, a, "Parse "+name+" + use",
				prepMsgs(prepParse(name, fmt.Sprintf("SELECT %d::int AS c%d", i*10, i)), prepUse(name)),
				"ParseComplete", "BindComplete", fmt.Sprintf("DataRow[%d]", i*10), "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		}
		rng := rand.New(rand.NewPCG(1, 2))
		for round := 0; round < 30; round++ {
			i := 1 + rng.IntN(3)
			name := "S_" + strconv.Itoa(i)
			prepRound(t, a, fmt.Sprintf("round %d: use %s", round, name),
				prepMsgs(prepBind(name), prepDescPortal(), prepExec(), prepSync()),
				"BindComplete", fmt.Sprintf("RowDescription[c%d]", i), fmt.Sprintf("DataRow[%d]", i*10), "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		}
		// All three in one pipeline, twice, in different orders.
		for _, order := range [][]int{{1, 2, 3}, {3, 1, 2, 3, 2, 1}} {
			var msgs []pgproto3.FrontendMessage
			var want []string
			for _, i := range order {
				msgs = append(msgs, prepBind("S_"+strconv.Itoa(i)), prepExec())
				want = append(want, "BindComplete", fmt.Sprintf("DataRow[%d]", i*10), "CommandComplete(SELECT 1)")
			}
			msgs = append(msgs, prepSync())
			want = append(want, "ReadyForQuery(I)")
			prepRound(t, a, fmt.Sprintf("one pipeline using %v", order), msgs, want...)
		}
		got := prepRound(t, b, "B: count pg_prepared_statements on the shared server",
			prepMsgs(prepQuery("SELECT count(*) FROM pg_prepared_statements")),
			"RowDescription[count]", "DataRow[*]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		n, err := strconv.Atoi(prepDataRow(t, got, 1)[0])
		if err != nil || n > 2 {
			t.Fatalf("pg_prepared_statements on the server: %q, want <= 2 (max_prepared_statements)", prepDataRow(t, got, 1)[0])
		}
	})
}

// Case 7: an error in the middle of a pipeline.
func TestPreparedPipelineErrorInMiddle(t *testing.T) {
	prepRun(t, "default_pool_size = 1", func(t *testing.T, dial prepDialer) {
		a := dial()
		prepRound(t, a, "pipeline: S_1 ok, S_2 'SELECT 1/0', S_3 skipped",
			prepMsgs(
				prepParse("S_1", "SELECT 1"), prepBind("S_1"), prepExec(),
				prepParse("S_2", "SELECT 1/0"), prepBind("S_2"), prepExec(),
				prepParse("S_3", "SELECT 3"), prepBind("S_3"), prepExec(),
				prepSync()),
			// 1/0 is folded by the planner, which runs at Bind.
			"ParseComplete", "BindComplete", "DataRow[1]", "CommandComplete(SELECT 1)",
			"ParseComplete", "ErrorResponse(22012)", "ReadyForQuery(I)")
		prepQuiet(t, a, "after the failed pipeline", 'I')
		prepRound(t, a, "use S_1 after the error", prepUse("S_1"),
			"BindComplete", "DataRow[1]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		prepRound(t, a, "Bind S_3, whose Parse was skipped", prepUse("S_3"),
			"ErrorResponse(26000)", "ReadyForQuery(I)")
		prepRound(t, a, "Parse S_3 again + use", prepMsgs(prepParse("S_3", "SELECT 3"), prepUse("S_3")),
			"ParseComplete", "BindComplete", "DataRow[3]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		prepRound(t, a, "Parse S_2 again (its Parse had succeeded)", prepMsgs(prepParse("S_2", "SELECT 2"), prepSync()),
			"ErrorResponse(42P05)", "ReadyForQuery(I)")
	})
}

// Case 7, variant: the statement texts are already prepared on the server
// (mux answers ParseComplete itself), and the error comes at execution.
func TestPreparedPipelineErrorMadeUpParseComplete(t *testing.T) {
	prepRun(t, "default_pool_size = 1", func(t *testing.T, dial prepDialer) {
		a := dial()
		const q1, q2, q3 = "SELECT 1", "SELECT 1/(random()*0)::int", "SELECT 3"
		prepRound(t, a, "prepare the texts under other names first",
			prepMsgs(prepParse("pre_1", q1), prepParse("pre_3", q3), prepSync()),
			"ParseComplete", "ParseComplete", "ReadyForQuery(I)")
		prepRound(t, a, "pipeline: S_1 ok (text known), S_2 fails at Execute, S_3 (text known) skipped",
			prepMsgs(
				prepParse("S_1", q1), prepBind("S_1"), prepExec(),
				prepParse("S_2", q2), prepBind("S_2"), prepExec(),
				prepParse("S_3", q3), prepBind("S_3"), prepExec(),
				prepSync()),
			"ParseComplete", "BindComplete", "DataRow[1]", "CommandComplete(SELECT 1)",
			"ParseComplete", "BindComplete", "ErrorResponse(22012)", "ReadyForQuery(I)")
		prepQuiet(t, a, "after the failed pipeline", 'I')
		prepRound(t, a, "use S_1 after the error", prepUse("S_1"),
			"BindComplete", "DataRow[1]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		prepRound(t, a, "Bind S_3, whose Parse was skipped", prepUse("S_3"),
			"ErrorResponse(26000)", "ReadyForQuery(I)")
		prepRound(t, a, "Parse S_3 again + use", prepMsgs(prepParse("S_3", q3), prepUse("S_3")),
			"ParseComplete", "BindComplete", "DataRow[3]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		// The error first, then a Parse of a known text: its made-up
		// ParseComplete must be dropped too.
		prepRound(t, a, "pipeline: use S_2 (fails), then Parse S_4 (text known) + use",
			prepMsgs(prepUse("S_2")[:2], prepParse("S_4", q1), prepBind("S_4"), prepExec(), prepSync()),
			"BindComplete", "ErrorResponse(22012)", "ReadyForQuery(I)")
		prepQuiet(t, a, "after the second failed pipeline", 'I')
		prepRound(t, a, "Bind S_4, whose Parse was skipped", prepUse("S_4"),
			"ErrorResponse(26000)", "ReadyForQuery(I)")
	})
}

// Case 8: a result type change (ALTER TABLE) and recovery by re-preparing.
func TestPreparedAlterTableRecovery(t *testing.T) {
	prepRun(t, "default_pool_size = 1", func(t *testing.T, dial prepDialer) {
		a, b := dial(), dial()
		table := prepUnique("prep_alter_")
		prepRound(t, a, "create table", prepMsgs(prepQuery("CREATE TABLE "+table+" (a int); INSERT INTO "+table+" VALUES (1)")),
			"CommandComplete(CREATE TABLE)", "CommandComplete(INSERT 0 1)", "ReadyForQuery(I)")
		t.Cleanup(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = cluster.Exec(ctx, "DROP TABLE IF EXISTS "+table)
		})
		sel := "SELECT * FROM " + table
		prepRound(t, a, "Parse S_1 + use",
			prepMsgs(prepParse("S_1", sel), prepBind("S_1"), prepDescPortal(), prepExec(), prepSync()),
			"ParseComplete", "BindComplete", "RowDescription[a]", "DataRow[1]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		prepRound(t, b, "B: ALTER TABLE ADD COLUMN", prepMsgs(prepQuery("ALTER TABLE "+table+" ADD COLUMN b int")),
			"CommandComplete(ALTER TABLE)", "ReadyForQuery(I)")
		prepRound(t, a, "use S_1 after the ALTER", prepUse("S_1"),
			"ErrorResponse(0A000)", "ReadyForQuery(I)")
		prepRound(t, a, "Close S_1 + Parse S_1 (same text) + use",
			prepMsgs(prepClose("S_1"), prepParse("S_1", sel), prepBind("S_1"), prepDescPortal(), prepExec(), prepSync()),
			"CloseComplete", "ParseComplete", "BindComplete", "RowDescription[a,b]", "DataRow[1,NULL]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		prepRound(t, a, "use S_1 again", prepUse("S_1"),
			"BindComplete", "DataRow[1,NULL]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		prepRound(t, b, "B: Parse S_9 (same text) + use",
			prepMsgs(prepParse("S_9", sel), prepBind("S_9"), prepDescPortal(), prepExec(), prepSync()),
			"ParseComplete", "BindComplete", "RowDescription[a,b]", "DataRow[1,NULL]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		prepRound(t, b, "B: DROP TABLE", prepMsgs(prepQuery("DROP TABLE "+table)),
			"CommandComplete(DROP TABLE)", "ReadyForQuery(I)")
	})
}

// Case 9: unnamed statements of several clients on one server.
func TestPreparedUnnamedAcrossClients(t *testing.T) {
	prepRun(t, "default_pool_size = 1", func(t *testing.T, dial prepDialer) {
		a, b, c := dial(), dial(), dial()
		prepRound(t, a, "A: Parse '' 'A' + Describe S '' + Sync",
			prepMsgs(prepParse("", "SELECT 'A'::text"), prepDescStmt(""), prepSync()),
			"ParseComplete", "ParameterDescription", "RowDescription[text]", "ReadyForQuery(I)")
		prepRound(t, b, "B: Parse '' 'B' + Describe S '' + Sync",
			prepMsgs(prepParse("", "SELECT 'B'::text"), prepDescStmt(""), prepSync()),
			"ParseComplete", "ParameterDescription", "RowDescription[text]", "ReadyForQuery(I)")
		useA := func(step string) {
			prepRound(t, a, step, prepUse(""), "BindComplete", "DataRow[A]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		}
		useB := func(step string) {
			prepRound(t, b, step, prepUse(""), "BindComplete", "DataRow[B]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		}
		useA("A: Bind '' + Execute + Sync")
		useB("B: Bind '' + Execute + Sync")
		useA("A: Bind '' again")
		prepRound(t, c, "C (never parsed ''): Bind '' + Execute + Sync", prepUse(""),
			"ErrorResponse(26000)", "ReadyForQuery(I)")
		prepRound(t, c, "C: Describe S '' + Sync", prepMsgs(prepDescStmt(""), prepSync()),
			"ErrorResponse(26000)", "ReadyForQuery(I)")
		useB("B: Bind '' after C's attempt")
		useA("A: Bind '' after C's attempt")
		prepRound(t, b, "B: a simple Query (drops the session's unnamed statement)", prepMsgs(prepQuery("SELECT 'q'")),
			"RowDescription[?column?]", "DataRow[q]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
		prepRound(t, c, "C: Bind '' after a simple Query", prepUse(""),
			"ErrorResponse(26000)", "ReadyForQuery(I)")
		useA("A: Bind '' at the end")
	})
}

// Case 10: DEALLOCATE through a simple Query.
func TestPreparedDeallocate(t *testing.T) {
	prepRun(t, "default_pool_size = 1", func(t *testing.T, dial prepDialer) {
		a := dial()
		prepRound(t, a, "Parse s_1 + Sync", prepMsgs(prepParse("s_1", "SELECT 1"), prepSync()),
			"ParseComplete", "ReadyForQuery(I)")
		prepRound(t, a, "DEALLOCATE s_1", prepMsgs(prepQuery("DEALLOCATE s_1")),
			"CommandComplete(DEALLOCATE)", "ReadyForQuery(I)")
		prepRound(t, a, "Bind s_1 after DEALLOCATE", prepUse("s_1"), "ErrorResponse(26000)", "ReadyForQuery(I)")

		prepRound(t, a, "Parse S_2 + Sync", prepMsgs(prepParse("S_2", "SELECT 2"), prepSync()),
			"ParseComplete", "ReadyForQuery(I)")
		prepRound(t, a, `DEALLOCATE "S_2"`, prepMsgs(prepQuery(`DEALLOCATE "S_2"`)),
			"CommandComplete(DEALLOCATE)", "ReadyForQuery(I)")
		prepRound(t, a, "Bind S_2 after DEALLOCATE", prepUse("S_2"), "ErrorResponse(26000)", "ReadyForQuery(I)")

		// A bare identifier folds to lower case: DEALLOCATE S_3 names s_3.
		prepRound(t, a, "Parse S_3 + Sync", prepMsgs(prepParse("S_3", "SELECT 3"), prepSync()),
			"ParseComplete", "ReadyForQuery(I)")
		prepRound(t, a, "DEALLOCATE S_3 (unquoted: names s_3)", prepMsgs(prepQuery("DEALLOCATE S_3")),
			"ErrorResponse(26000)", "ReadyForQuery(I)")
		prepRound(t, a, "Bind S_3 after the failed DEALLOCATE", prepUse("S_3"),
			"BindComplete", "DataRow[3]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")

		prepRound(t, a, "Parse s_4 + Sync", prepMsgs(prepParse("s_4", "SELECT 4"), prepSync()),
			"ParseComplete", "ReadyForQuery(I)")
		prepRound(t, a, "DEALLOCATE PREPARE s_4", prepMsgs(prepQuery("DEALLOCATE PREPARE s_4")),
			"CommandComplete(DEALLOCATE)", "ReadyForQuery(I)")
		prepRound(t, a, "Bind s_4 after DEALLOCATE PREPARE", prepUse("s_4"), "ErrorResponse(26000)", "ReadyForQuery(I)")

		prepRound(t, a, "DEALLOCATE nosuch", prepMsgs(prepQuery("DEALLOCATE nosuch")),
			"ErrorResponse(26000)", "ReadyForQuery(I)")

		prepRound(t, a, "Parse a_1, a_2 + Sync",
			prepMsgs(prepParse("a_1", "SELECT 11"), prepParse("a_2", "SELECT 12"), prepSync()),
			"ParseComplete", "ParseComplete", "ReadyForQuery(I)")
		prepRound(t, a, "DEALLOCATE ALL", prepMsgs(prepQuery("DEALLOCATE ALL")),
			"CommandComplete(DEALLOCATE ALL)", "ReadyForQuery(I)")
		for _, name := range []string{"a_1", "a_2", "S_3"} {
			prepRound(t, a, "Bind "+name+" after DEALLOCATE ALL", prepUse(name), "ErrorResponse(26000)", "ReadyForQuery(I)")
		}
		prepRound(t, a, "Parse a_1 again + use", prepMsgs(prepParse("a_1", "SELECT 11"), prepUse("a_1")),
			"ParseComplete", "BindComplete", "DataRow[11]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
	})
}

// Extra: a DEALLOCATE that mux answers itself must not keep the server
// from other clients.
func TestPreparedDeallocateReleasesServer(t *testing.T) {
	m := startMux(t, "default_pool_size = 1")
	a := dialRaw(t, m, "muxuser", "muxpass", "muxtest")
	b := dialRaw(t, m, "muxuser", "muxpass", "muxtest")
	prepRound(t, a, "A: Parse s_1 + Sync", prepMsgs(prepParse("s_1", "SELECT 1"), prepSync()),
		"ParseComplete", "ReadyForQuery(I)")
	prepRound(t, a, "A: DEALLOCATE s_1", prepMsgs(prepQuery("DEALLOCATE s_1")),
		"CommandComplete(DEALLOCATE)", "ReadyForQuery(I)")
	b.fe.Send(prepQuery("SELECT 'b'"))
	if err := b.fe.Flush(); err != nil {
		t.Fatal(err)
	}
	_ = b.conn.SetReadDeadline(time.Now().Add(3 * time.Second))
	var got []string
	for {
		msg, err := b.fe.Receive()
		if err != nil {
			t.Fatalf("B: SELECT after A's DEALLOCATE (A idle, pool of one): no reply in 3 s (%v); got %v: A still holds the only server", err, got)
		}
		s, _ := prepDescribe(msg)
		got = append(got, s)
		if _, ok := msg.(*pgproto3.ReadyForQuery); ok {
			break
		}
	}
	if want := []string{"RowDescription[?column?]", "DataRow[b]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)"}; !prepEqual(got, want) {
		t.Fatalf("B: got %v, want %v", got, want)
	}
}

// Extra: DEALLOCATE in an aborted transaction fails with 25P02, as in
// Postgres, and leaves the statement in place.
func TestPreparedDeallocateInFailedTransaction(t *testing.T) {
	prepRun(t, "default_pool_size = 1", func(t *testing.T, dial prepDialer) {
		a := dial()
		prepRound(t, a, "Parse s_1 + Sync", prepMsgs(prepParse("s_1", "SELECT 1"), prepSync()),
			"ParseComplete", "ReadyForQuery(I)")
		prepRound(t, a, "BEGIN; SELECT 1/0", prepMsgs(prepQuery("BEGIN"), prepQuery("SELECT 1/0")),
			"CommandComplete(BEGIN)", "ReadyForQuery(T)", "ErrorResponse(22012)", "ReadyForQuery(E)")
		prepRound(t, a, "in the failed transaction: DEALLOCATE s_1", prepMsgs(prepQuery("DEALLOCATE s_1")),
			"ErrorResponse(25P02)", "ReadyForQuery(E)")
		prepRound(t, a, "ROLLBACK", prepMsgs(prepQuery("ROLLBACK")), "CommandComplete(ROLLBACK)", "ReadyForQuery(I)")
		prepRound(t, a, "Bind s_1 (its DEALLOCATE failed)", prepUse("s_1"),
			"BindComplete", "DataRow[1]", "CommandComplete(SELECT 1)", "ReadyForQuery(I)")
	})
}

// Extra: Parse in an aborted transaction fails with 25P02, as in Postgres,
// even when the text is already prepared on the server, and registers
// nothing.
func TestPreparedParseInFailedTransaction(t *testing.T) {
	prepRun(t, "default_pool_size = 1", func(t *testing.T, dial prepDialer) {
		a := dial()
		prepRound(t, a, "Parse s_1 + Sync", prepMsgs(prepParse("s_1", "SELECT 1"), prepSync()),
			"ParseComplete", "ReadyForQuery(I)")
		prepRound(t, a, "BEGIN; SELECT 1/0", prepMsgs(prepQuery("BEGIN"), prepQuery("SELECT 1/0")),
			"CommandComplete(BEGIN)", "ReadyForQuery(T)", "ErrorResponse(22012)", "ReadyForQuery(E)")
		prepRound(t, a, "in the failed transaction: Parse s_2 (text already prepared) + Sync",
			prepMsgs(prepParse("s_2", "SELECT 1"), prepSync()),
			"ErrorResponse(25P02)", "ReadyForQuery(E)")
		prepRound(t, a, "ROLLBACK", prepMsgs(prepQuery("ROLLBACK")), "CommandComplete(ROLLBACK)", "ReadyForQuery(I)")
		prepRound(t, a, "Bind s_2 (its Parse failed)", prepUse("s_2"),
			"ErrorResponse(26000)", "ReadyForQuery(I)")
	})
}
