package session

import (
	"encoding/binary"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/muxpg/mux/internal/wire"
)

func msg(typ byte, body string) []byte {
	m := make([]byte, 5, 5+len(body))
	m[0] = typ
	binary.BigEndian.PutUint32(m[1:], uint32(4+len(body)))
	return append(m, body...)
}

// frameAll runs a framer over in, delivered in pieces cut at cuts, the way
// a driver does: unconsumed input stays, Partial waits for more. It
// returns the bytes passed on, the run, and the error that stopped it.
func frameAll(in []byte, cuts []int, whole *TypeSet, maxMsg int) (out []byte, types []byte, run Run, err error) {
	var fr Framer
	var buf []byte
	feed := func(n int) { buf = append(buf, in[:n]...); in = in[n:] }
	for i := 0; ; i++ {
		if len(in) > 0 {
			n := len(in)
			if i < len(cuts) && cuts[i] > 0 && cuts[i] < n {
				n = cuts[i]
			}
			feed(n)
		}
		for {
			f, ferr := fr.Next(buf, whole, Limits{MaxMessage: int32(maxMsg)})
			if ferr != nil {
				return out, types, run, ferr
			}
			if f.Kind == Short || f.Kind == Partial {
				break
			}
			if f.Kind != Rest {
				types = append(types, f.Type)
				run.Add(f.Type)
			}
			out = append(out, buf[:f.Len]...)
			buf = buf[f.Len:]
		}
		if len(in) == 0 {
			return out, types, run, nil
		}
	}
}

func TestFramerSplitsAndStreams(t *testing.T) {
	in := append(msg('Q', "SELECT 1\x00"), msg('d', strings.Repeat("x", 100))...)
	in = append(in, msg('S', "")...)
	whole := Types('Q')
	out, types, run, err := frameAll(in, []int{3, 20, 7, 50}, &whole, 1<<10)
	if err != nil {
		t.Fatal(err)
	}
	if string(out) != string(in) || string(types) != "QdS" || run.Syncs != 2 {
		t.Fatalf("got %q types %q syncs %d", out, types, run.Syncs)
	}
}

func TestFramerPartialWaitsForWholeMessage(t *testing.T) {
	q := msg('Q', "SELECT 1\x00")
	var fr Framer
	whole := Types('Q')
	f, err := fr.Next(q[:8], &whole, Limits{MaxMessage: 1 << 10})
	if err != nil || f.Kind != Partial || f.Len != len(q) || fr.Mid() {
		t.Fatalf("got %+v %v mid %v", f, err, fr.Mid())
	}
	f, _ = fr.Next(q, &whole, Limits{MaxMessage: 1 << 10})
	if f.Kind != Whole || f.Len != len(q) {
		t.Fatalf("got %+v", f)
	}
}

func TestFramerRefusesBadHeaders(t *testing.T) {
	for _, in := range [][]byte{
		{'Q', 0, 0, 0, 3},        // length under 4
		{'Q', 0, 0, 0x10, 0},     // over max_message_size
		{'Z', 0, 0, 0, 4},        // a backend message type
		{0, 0, 0, 0, 8, 1, 2, 3}, // a startup packet mid-session
	} {
		var fr Framer
		_, err := fr.Next(in, &TypeSet{}, Limits{MaxMessage: 1 << 10})
		var we *wire.Error
		if !errors.As(err, &we) || we.Code != wire.CodeProtocolViolation {
			t.Errorf("%q: got %v, want 08P01", in, err)
		}
	}
}

// FuzzFramer frames arbitrary client bytes delivered in arbitrary pieces:
// what passes is exactly the input up to the first refused header, each
// message's type is seen once, and the replies owed match a model.
func FuzzFramer(f *testing.F) {
	seed := append(msg('Q', "SELECT 1\x00"), msg('P', "\x00SELECT $1\x00\x00\x00")...)
	seed = append(seed, msg('S', "")...)
	f.Add(seed, []byte{3, 7, 1}, true)
	f.Add(append(msg('d', strings.Repeat("x", 300)), msg('c', "")...), []byte{200}, false)
	f.Add([]byte{'Z', 0, 0, 0, 4}, []byte{}, true)
	f.Fuzz(func(t *testing.T, in, cutBytes []byte, inspect bool) {
		const maxMsg = 1 << 12
		whole := TypeSet{}
		if inspect {
			whole = Types('Q', 'P')
		}
		cuts := make([]int, len(cutBytes))
		for i, c := range cutBytes {
			cuts[i] = int(c)
		}
		end, syncs, refused, types := 0, 0, false, []byte(nil)
		for pos := 0; len(in)-pos >= wire.HeaderLen; {
			typ, l := wire.Header(in[pos:])
			if l < 4 || l > maxMsg || !strings.ContainsRune("QSFPBEDCHdcfX", rune(typ)) {
				refused = true
				break
			}
			if len(in)-pos < 1+l && whole.Has(typ) {
				break
			}
			types = append(types, typ)
			if typ == 'Q' || typ == 'S' || typ == 'F' {
				syncs++
			}
			if len(in)-pos < 1+l {
				end = len(in)
				break
			}
			pos += 1 + l
			end = pos
		}
		out, gotTypes, run, err := frameAll(in, cuts, &whole, maxMsg)
		if refused != (err != nil) {
			t.Fatalf("refused %v, error %v", refused, err)
		}
		if string(out) != string(in[:end]) || string(gotTypes) != string(types) || run.Syncs != syncs {
			t.Fatalf("passed %q types %q syncs %d; want %q %q %d", out, gotTypes, run.Syncs, in[:end], types, syncs)
		}
	})
}

func TestDecide(t *testing.T) {
	type step struct {
		run    string // message types sent
		ready  int
		status byte
		fatal  bool
		unsure bool
		want   Decision
	}
	cases := []struct {
		name  string
		mode  Mode
		steps []step
	}{
		{"simple query released", Transaction, []step{{run: "Q", ready: 1, status: 'I', want: Release}}},
		{"state check before release", Transaction, []step{{run: "Q", ready: 1, status: 'I', unsure: true, want: Check}}},
		{"transaction kept", Transaction, []step{
			{run: "Q", ready: 1, status: 'T', want: Idle},
			{run: "Q", ready: 1, status: 'I', want: Release},
		}},
		{"pipeline waits for the last Sync", Transaction, []step{
			{run: "PBESPBES", ready: 1, status: 'I', want: Keep},
			{ready: 1, status: 'I', want: Release},
		}},
		{"unsynced extended batch is idle, not released", Transaction, []step{
			{run: "S", ready: 1, status: 'I', want: Release},
			{run: "PB", want: Keep},
		}},
		{"dirty after answer", Transaction, []step{{run: "QP", ready: 1, status: 'I', want: Idle}}},
		{"asynchronous messages", Transaction, []step{{run: "Q", want: Keep}}},
		{"session mode keeps", Session, []step{{run: "Q", ready: 1, status: 'I', want: Idle}}},
		{"statement mode refuses BEGIN", Statement, []step{{run: "Q", ready: 1, status: 'T', want: RefuseTransaction}}},
		{"fatal closes", Transaction, []step{{run: "Q", fatal: true, want: Close}}},
	}
	for _, tc := range cases {
		c := Core{Mode: tc.mode}
		c.Attached()
		now := time.Unix(0, 0)
		for i, s := range tc.steps {
			var run Run
			for _, typ := range []byte(s.run) {
				run.Add(typ)
			}
			if s.run != "" {
				c.Sent(run, now)
			}
			if s.ready > 0 {
				c.Answered(s.ready, s.status, now)
			}
			if got := c.Decide(Reply{Ready: s.ready, Fatal: s.fatal}, s.unsure); got != s.want {
				t.Errorf("%s, step %d: %v, want %v", tc.name, i, got, s.want)
			}
		}
	}
}

func TestTiming(t *testing.T) {
	var c Core
	c.Mode = Transaction
	c.Attached()
	t0 := time.Unix(100, 0)
	var begin, sel Run
	begin.Add('Q')
	sel.Add('Q')
	if starts, awaits := c.Sent(begin, t0); !starts || !awaits {
		t.Fatalf("first query: starts %v awaits %v", starts, awaits)
	}
	tm := c.Answered(1, 'T', t0.Add(2*time.Millisecond))
	if tm.Query != 2*time.Millisecond || tm.XactEnded {
		t.Fatalf("BEGIN timed %+v", tm)
	}
	c.Sent(sel, t0.Add(10*time.Millisecond))
	tm = c.Answered(1, 'I', t0.Add(13*time.Millisecond))
	if tm.Query != 3*time.Millisecond || !tm.XactEnded || tm.Xact != 13*time.Millisecond {
		t.Fatalf("COMMIT timed %+v", tm)
	}
	if c.LastRequest() != t0.Add(10*time.Millisecond) {
		t.Fatalf("last request %v", c.LastRequest())
	}
}

// disable_pqexec: with NoSimpleQuery a Query is refused with 08P01 and
// the extended protocol's messages pass.
func TestFramerRefusesSimpleQuery(t *testing.T) {
	lim := Limits{MaxMessage: 1 << 10, NoSimpleQuery: true}
	var fr Framer
	if _, err := fr.Next(msg('P', "\x00SELECT 1\x00\x00\x00"), &TypeSet{}, lim); err != nil {
		t.Fatalf("Parse refused: %v", err)
	}
	_, err := fr.Next(msg('Q', "SELECT 1\x00"), &TypeSet{}, lim)
	var we *wire.Error
	if !errors.As(err, &we) || we.Code != wire.CodeProtocolViolation || !strings.Contains(we.Message, "disable_pqexec") {
		t.Fatalf("Query: %v, want 08P01 naming disable_pqexec", err)
	}
	lim.NoSimpleQuery = false
	if _, err := fr.Next(msg('Q', "SELECT 1\x00"), &TypeSet{}, lim); err != nil {
		t.Fatalf("Query refused without disable_pqexec: %v", err)
	}
}
