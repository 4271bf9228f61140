package session

import (
	"bytes"
	"testing"

	"github.com/muxpg/mux/internal/wire"
)

// A pass-through tracker (max_prepared_statements = 0) sends named
// statements' messages unchanged and answers none of them itself, but
// still tells the host what a named statement's text may do to session
// state at each Bind, refuses what pin_policy = error refuses, and answers
// LISTEN.
func TestPassTrackerLeavesNamedStatementsAlone(t *testing.T) {
	trk, h := NewPassTracker(), newHost()
	s := newServer(0)
	parse := msg('P', "s1\x00SELECT set_config('a.b', $1, false)\x00\x00\x00")
	bind := msg('B', "\x00s1\x00\x00\x00\x00\x00\x00\x00")
	plain := msg('P', "s2\x00SELECT 1\x00\x00\x00")
	describe, closeS2 := msg('D', "Ss2\x00"), msg('C', "Ss2\x00")
	in := [][]byte{parse, bind, msg('E', "\x00\x00\x00\x00\x00"), plain, describe, closeS2, msg('S', "")}
	out := send(t, &trk, s, h, in...)
	if want := bytes.Join(in, nil); !bytes.Equal(out, want) {
		t.Fatalf("server got %q, want the client's messages unchanged %q", out, want)
	}
	if len(h.bound) != 1 || !h.bound[0].SetConfig || !h.bound[0].May {
		t.Fatalf("Bound saw %+v, want the statement's hit", h.bound)
	}
	got := reply(&trk, s, h, msg('1', ""), msg('2', ""), msg('C', "SELECT 1\x00"), msg('1', ""), msg('t', "\x00\x00"), msg('n', ""), msg('3', ""), msg('Z', "I"))
	if types(t, got) != "12C1tn3Z" || trk.Owes() {
		t.Fatalf("client got %q, owes %v", types(t, got), trk.Owes())
	}
	if trk.Len() != 0 || s.Stmts.Len() != 0 {
		t.Fatalf("%d names, %d on the server's cache: a pass-through tracker keeps none", trk.Len(), s.Stmts.Len())
	}

	// DEALLOCATE of a name goes to the server, which knows it.
	dealloc := msg('Q', "DEALLOCATE s1\x00")
	if out, counted := trk.ClientMessage(nil, s, dealloc, h); !bytes.Equal(out, dealloc) || !counted {
		t.Fatalf("DEALLOCATE: server got %q (counted %v)", out, counted)
	}
	reply(&trk, s, h, msg('C', "DEALLOCATE\x00"), msg('Z', "I"))
	// Nothing is answered without a server.
	if _, ok := trk.Unattached(append(plain, msg('S', "")...)); ok {
		t.Fatal("Unattached answered a pass-through Parse")
	}
	// What the tracker does besides: pin_policy = error and LISTEN.
	if out := send(t, &trk, s, h, msg('P', "r\x00SELECT 'refuse'\x00\x00\x00")); !bytes.Contains(out, []byte("ERRCODE = '0A000'")) {
		t.Errorf("a refused named statement reached the server as %q", out)
	}
	trk.Reset()
	if out, counted := trk.ClientMessage(nil, s, msg('Q', "LISTEN ch\x00"), h); len(out) != 0 || counted || !trk.HasAnswers() {
		t.Errorf("LISTEN: server got %q, counted %v: want mux's answer", out, counted)
	}
	trk.Forget()
}

// FuzzPassTrackedMessages is FuzzTrackedMessages for a pass-through
// tracker: any client input gives well-framed output to the server and to
// the client, and a client's named Parse, Bind, Describe and Close reach
// the server as they were.
func FuzzPassTrackedMessages(f *testing.F) {
	seed := append(msg('P', "S_1\x00SELECT set_config('a.b', '1', false)\x00\x00\x00"), msg('B', "\x00S_1\x00\x00\x00\x00\x00\x00\x00")...)
	seed = append(seed, msg('D', "SS_1\x00")...)
	seed = append(seed, msg('C', "SS_1\x00")...)
	seed = append(seed, msg('S', "")...)
	f.Add(seed, append(msg('1', ""), msg('2', "")...))
	f.Add(msg('Q', "DEALLOCATE S_1; LISTEN x\x00"), msg('Z', "I"))
	f.Add(msg('P', "\x00SELECT 1\x00\x00\x00"), msg('E', "SERROR\x00C0A000\x00\x00"))
	f.Fuzz(func(t *testing.T, client, server []byte) {
		s := newServer(0)
		trk, h := NewPassTracker(), newHost()
		var out []byte
		for len(client) >= wire.HeaderLen {
			_, l := wire.Header(client)
			if l < 4 || 1+l > len(client) {
				break
			}
			m := client[:1+l]
			client = client[1+l:]
			before := len(out)
			out, _ = trk.ClientMessage(out, s, m, h)
			if named(m) && !bytes.Contains(m, []byte("refuse")) && !bytes.Equal(out[before:], m) {
				t.Fatalf("named statement message %q reached the server as %q", m, out[before:])
			}
		}
		types(t, out)
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
		if trk.Len() != 0 || s.Stmts.Len() != 0 {
			t.Fatal("a pass-through tracker kept statement names")
		}
	})
}

// named reports whether m is a well-formed Parse or Bind of a named
// statement, or a Describe or Close of one, whose text (for a Parse) has
// no LISTEN for the host to replace.
func named(m []byte) bool {
	body := m[wire.HeaderLen:]
	switch m[0] {
	case 'P':
		name, rest, ok1 := wire.CString(body)
		text, _, ok2 := wire.CString(rest)
		return ok1 && ok2 && len(name) > 0 && FindWords(text)&WordListen == 0
	case 'B':
		_, rest, ok1 := wire.CString(body)
		name, _, ok2 := wire.CString(rest)
		return ok1 && ok2 && len(name) > 0
	case 'D', 'C':
		name, ok := statementTarget(body)
		return ok && len(name) > 0
	}
	return false
}
