package session

import (
	"bytes"
	"reflect"
	"testing"
)

// A tracker's statements come out with their text and parameter types
// (OIDs with zero bytes in them included) and, restored into another
// pool's tracker, are prepared on that pool's servers at their first use.
func TestTrackerStatementsMoveToAnotherTracker(t *testing.T) {
	trk, h := NewTracker(NewRegistry(nil)), newHost()
	s := newServer(4)
	parse := msg('P', "s1\x00SELECT $1::int, $2\x00\x00\x02\x00\x00\x00\x17\x00\x00\x01\x00")
	unnamed := msg('P', "\x00SELECT 2\x00\x00\x00")
	send(t, &trk, s, h, parse, unnamed, msg('S', ""))
	reply(&trk, s, h, msg('1', ""), msg('1', ""), msg('Z', "I"))
	got := trk.Statements()
	want := []Prepared{
		{Name: "", Query: "SELECT 2", ParamOIDs: nil},
		{Name: "s1", Query: "SELECT $1::int, $2", ParamOIDs: []uint32{23, 256}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Statements() = %+v, want %+v", got, want)
	}

	reg2 := NewRegistry(nil)
	moved := NewTracker(reg2)
	moved.Restore(got)
	if moved.Len() != 1 {
		t.Fatalf("restored %d named statements, want 1", moved.Len())
	}
	if again := moved.Statements(); !reflect.DeepEqual(again, want) {
		t.Fatalf("restored tracker gives %+v", again)
	}
	s2 := newServer(4)
	bind := msg('B', "\x00s1\x00\x00\x00\x00\x00\x00\x00")
	out := send(t, &moved, s2, h, bind, msg('E', "\x00\x00\x00\x00\x00"), msg('S', ""))
	if got := types(t, out); got != "PBES" {
		t.Fatalf("the new server got %q, want the statement prepared first", got)
	}
	if !bytes.Contains(out, []byte("SELECT $1::int, $2\x00\x00\x02\x00\x00\x00\x17\x00\x00\x01\x00")) {
		t.Fatalf("the Parse lost the text or the types: %q", out)
	}
	// The unnamed statement too: a Bind of it re-sends its Parse.
	out = send(t, &moved, newServer(4), h, msg('B', "\x00\x00\x00\x00\x00\x00\x00\x00"), msg('S', ""))
	if !bytes.Contains(out, []byte("SELECT 2\x00")) {
		t.Fatalf("the unnamed statement was not restored: %q", out)
	}
}
