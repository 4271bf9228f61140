package session

import (
	"bytes"
	"testing"
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
