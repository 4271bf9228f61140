package session

import (
	"bytes"
	"testing"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
	"github.com/muxpg/mux/sqllex"
)

// testHost is a Host on the real session-state filter: a Query with
// LISTEN is answered by mux, a Parse's LISTEN replaced; text with "refuse"
// is refused (pin_policy = error). It follows the transaction status from
// ReadyForQuery.
type testHost struct {
	status byte
	bound  []StateHit
	calls  int // FunctionCalls
	seen   []byte
}

func newHost() *testHost { return &testHost{status: 'I'} }

func (h *testHost) Status() byte { return h.status }

var testOpt = sqllex.Options{StandardConformingStrings: true}

func (h *testHost) CheckText(m []byte) TextCheck {
	chk := TextCheck{Msg: m, Opt: testOpt}
	text := bytes.TrimSuffix(m[wire.HeaderLen:], []byte{0})
	if m[0] == 'P' {
		_, rest, _ := wire.CString(m[wire.HeaderLen:])
		text, _, _ = wire.CString(rest)
	}
	w := FindWords(text)
	if w&WordListen != 0 {
		if m[0] == 'Q' {
			chk.Answer = msg('C', "LISTEN\x00")
			return chk
		}
		if repl := RefuseListen(m, testOpt); repl != nil {
			chk.Msg = repl
		}
	}
	chk.Hit = ScanState(text, w, testOpt)
	if bytes.Contains(text, []byte("refuse")) {
		chk.Refuse = "refused"
	}
	chk.Lex = w&(WordDeallocate|WordDiscard) != 0
	return chk
}

func hitOf(query []byte) StateHit { return ScanState(query, FindWords(query), testOpt) }

func (h *testHost) Bound(hit StateHit, params []byte) { h.bound = append(h.bound, hit) }

func (h *testHost) FunctionCall() { h.calls++ }

func (h *testHost) Replied(typ byte, body []byte) {
	h.seen = append(h.seen, typ)
	if typ == 'Z' && len(body) > 0 {
		h.status = body[0]
	}
}

func newServer(max int) Server {
	return Server{Stmts: pool.NewStmtCache(max), Unnamed: new(uint64)}
}

// types lists the message types of a well-formed stream, or fails.
func types(t *testing.T, stream []byte) string {
	t.Helper()
	var out []byte
	for rest := stream; len(rest) > 0; {
		if len(rest) < wire.HeaderLen {
			t.Fatalf("truncated header in %q", stream)
		}
		typ, l := wire.Header(rest)
		if l < 4 || 1+l > len(rest) {
			t.Fatalf("bad message length in %q", stream)
		}
		out = append(out, typ)
		rest = rest[1+l:]
	}
	return string(out)
}

func send(t *testing.T, trk *Tracker, s Server, h Host, msgs ...[]byte) []byte {
	t.Helper()
	var out []byte
	for _, m := range msgs {
		out, _ = trk.ClientMessage(out, s, m, h)
	}
	return out
}

func reply(trk *Tracker, s Server, h Host, msgs ...[]byte) []byte {
	got, bp := trk.ServerData(s, bytes.Join(msgs, nil), h)
	got = append([]byte(nil), got...)
	if bp != nil {
		wire.PutBuf(bp)
	}
	return got
}

func TestTrackerRenamesAndPreparesOnEachServer(t *testing.T) {
	reg := NewRegistry(hitOf)
	trk, h := NewTracker(reg), newHost()
	s1 := newServer(4)
	parse := msg('P', "s1\x00SELECT set_config('a.b', $1, false)\x00\x00\x00")
	bind := msg('B', "\x00s1\x00\x00\x00\x00\x00\x00\x00")
	out := send(t, &trk, s1, h, parse, bind, msg('E', "\x00\x00\x00\x00\x00"), msg('S', ""))
	if got := types(t, out); got != "PBES" || !bytes.Contains(out, []byte("_mux_1\x00")) || bytes.Contains(out, []byte("s1\x00")) {
		t.Fatalf("server got %q", out)
	}
	got := reply(&trk, s1, h, msg('1', ""), msg('2', ""), msg('C', "SELECT 1\x00"), msg('Z', "I"))
	if types(t, got) != "12CZ" || trk.Owes() {
		t.Fatalf("client got %q, owes %v", got, trk.Owes())
	}
	if len(h.bound) != 1 || !h.bound[0].SetConfig {
		t.Fatalf("Bound saw %+v, want the statement's hit", h.bound)
	}
	// Another server lacks the statement: mux prepares it and hides the
	// ParseComplete the client did not ask for.
	s2 := newServer(4)
	out = send(t, &trk, s2, h, bind, msg('S', ""))
	if got := types(t, out); got != "PBS" {
		t.Fatalf("second server got %q", got)
	}
	got = reply(&trk, s2, h, msg('1', ""), msg('2', ""), msg('Z', "I"))
	if types(t, got) != "2Z" {
		t.Fatalf("client got %q", got)
	}
	if st := reg.Stats(); st.ClientParses != 1 || st.ServerParses != 2 {
		t.Fatalf("stats %+v", st)
	}
}

func TestTrackerAnswersWhatTheServerHas(t *testing.T) {
	reg := NewRegistry(nil)
	a, b, h := NewTracker(reg), NewTracker(reg), newHost()
	s := newServer(4)
	parse := msg('P', "x\x00SELECT 1\x00\x00\x00")
	send(t, &a, s, h, parse, msg('S', ""))
	reply(&a, s, h, msg('1', ""), msg('Z', "I"))
	// The second client's Parse needs nothing from the server but its Sync.
	out := send(t, &b, s, h, parse)
	if len(out) != 0 || !b.HasAnswers() {
		t.Fatalf("server got %q; answers %v", out, b.HasAnswers())
	}
	if got := types(t, b.AppendAnswers(nil, 'I')); got != "1" {
		t.Fatalf("made-up answers %q", got)
	}
	// And with no server at all: a PQprepare-style run of a verified one.
	c := NewTracker(reg)
	ans, ok := c.Unattached(append(msg('P', "y\x00SELECT 1\x00\x00\x00"), msg('S', "")...))
	if !ok || types(t, ans) != "1Z" || c.Len() != 1 {
		t.Fatalf("Unattached = %q, %v; %d names", ans, ok, c.Len())
	}
	if _, ok := c.Unattached(msg('P', "z\x00SELECT 2\x00\x00\x00")); ok {
		t.Fatal("Unattached answered a statement no server has parsed")
	}
}

func TestTrackerErrorSkipsToSync(t *testing.T) {
	reg := NewRegistry(nil)
	trk, h := NewTracker(reg), newHost()
	s := newServer(4)
	out := send(t, &trk, s, h, msg('P', "bad\x00SELEC 1\x00\x00\x00"),
		msg('B', "\x00bad\x00\x00\x00\x00\x00\x00\x00"), msg('S', ""))
	if types(t, out) != "PBS" {
		t.Fatalf("server got %q", out)
	}
	got := reply(&trk, s, h, msg('E', "SERROR\x00C42601\x00\x00"), msg('Z', "I"))
	if types(t, got) != "EZ" || trk.Owes() {
		t.Fatalf("client got %q", got)
	}
	if trk.Len() != 0 || s.Stmts.Len() != 0 {
		t.Fatalf("failed Parse kept: %d names, %d on server", trk.Len(), s.Stmts.Len())
	}
}

func TestTrackerRaisesWhatPostgresWould(t *testing.T) {
	trk, h := NewTracker(NewRegistry(nil)), newHost()
	s := newServer(4)
	parse := msg('P', "x\x00SELECT 1\x00\x00\x00")
	send(t, &trk, s, h, parse)
	for _, tc := range []struct {
		m    []byte
		code string
	}{
		{parse, "42P05"},
		{msg('B', "\x00nope\x00\x00\x00\x00\x00\x00\x00"), "26000"},
		{msg('D', "Snope\x00"), "26000"},
		{msg('P', "r\x00SELECT 'refuse'\x00\x00\x00"), "0A000"},
	} {
		out := send(t, &trk, s, h, tc.m)
		if types(t, out) != "PBE" || !bytes.Contains(out, []byte("ERRCODE = '"+tc.code+"'")) {
			t.Errorf("%q: server got %q, want a raise of %s", tc.m, out, tc.code)
		}
	}
}

func TestTrackerQueries(t *testing.T) {
	trk, h := NewTracker(NewRegistry(nil)), newHost()
	s := newServer(4)
	send(t, &trk, s, h, msg('P', "x\x00SELECT 1\x00\x00\x00"))
	reply(&trk, s, h, msg('1', ""))
	for _, tc := range []struct {
		sql     string
		server  string // message types the server gets
		counted bool
	}{
		{"DEALLOCATE x", "", false},     // mux answers
		{"DEALLOCATE other", "Q", true}, // perhaps an SQL PREPARE: the server answers
		{"LISTEN a", "", false},         // the host answers
		{"SELECT 'refuse'", "Q", true},  // raised by the server
	} {
		out, counted := trk.ClientMessage(nil, s, msg('Q', tc.sql+"\x00"), h)
		if types(t, out) != tc.server || counted != tc.counted {
			t.Errorf("%s: server got %q, counted %v", tc.sql, out, counted)
		}
		if tc.server == "" {
			if got := types(t, trk.AppendAnswers(nil, 'I')); got[len(got)-1] != 'Z' {
				t.Errorf("%s: answered %q", tc.sql, got)
			}
		}
		trk.Reset()
	}
	if trk.Len() != 0 {
		t.Fatalf("DEALLOCATE left %d names", trk.Len())
	}
	// DISCARD ALL empties the server's statements once it succeeds.
	send(t, &trk, s, h, msg('Q', "DISCARD ALL\x00"))
	reply(&trk, s, h, msg('C', "DISCARD ALL\x00"), msg('Z', "I"))
	if s.Stmts.Len() != 0 {
		t.Fatalf("%d statements left on the server after DISCARD ALL", s.Stmts.Len())
	}
	if string(h.seen) != "CZ" {
		t.Fatalf("host saw %q, want the CommandComplete and ReadyForQuery", h.seen)
	}
}

// FuzzTrackedMessages drives the prepared-statement rewriting with
// arbitrary client messages and then arbitrary server replies: no panic,
// what mux sends the server is a well-formed message stream, and so is
// what it passes the client from a well-formed reply stream.
func FuzzTrackedMessages(f *testing.F) {
	seed := append(msg('P', "S_1\x00SELECT 1\x00\x00\x00"), msg('B', "\x00S_1\x00\x00\x00\x00\x00\x00\x00")...)
	seed = append(seed, msg('E', "\x00\x00\x00\x00\x00")...)
	seed = append(seed, msg('S', "")...)
	f.Add(seed, append(msg('1', ""), msg('2', "")...))
	f.Add(msg('Q', "DEALLOCATE S_1\x00"), msg('Z', "I"))
	f.Add(msg('C', "SS_1\x00"), msg('E', "SERROR\x00C0A000\x00\x00"))
	f.Fuzz(func(t *testing.T, client, server []byte) {
		s := newServer(2)
		trk, h := NewTracker(NewRegistry(hitOf)), newHost()
		var out []byte
		for len(client) >= wire.HeaderLen {
			_, l := wire.Header(client)
			if l < 4 || 1+l > len(client) {
				break
			}
			m := client[:1+l]
			client = client[1+l:]
			out, _ = trk.ClientMessage(out, s, m, h)
		}
		types(t, out)
		// Server replies must be framed; keep only whole ones.
		var framed []byte
		for len(server) >= wire.HeaderLen {
			_, l := wire.Header(server)
			if l < 4 || 1+l > len(server) {
				break
			}
			framed = append(framed, server[:1+l]...)
			server = server[1+l:]
		}
		types(t, reply(&trk, s, h, framed))
		types(t, trk.AppendAnswers(nil, h.Status()))
	})
}
