package admin

import (
	"math"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
)

// decode splits a reply into its messages.
func decode(t *testing.T, b []byte) []pgproto3.BackendMessage {
	t.Helper()
	f := pgproto3.NewFrontend(&byteReader{b: b}, nil)
	var out []pgproto3.BackendMessage
	for {
		m, err := f.Receive()
		if err != nil {
			return out
		}
		switch m := m.(type) {
		case *pgproto3.DataRow:
			vals := make([][]byte, len(m.Values))
			for i, v := range m.Values {
				if v != nil {
					vals[i] = append([]byte{}, v...)
				}
			}
			out = append(out, &pgproto3.DataRow{Values: vals})
		case *pgproto3.RowDescription:
			out = append(out, &pgproto3.RowDescription{Fields: append([]pgproto3.FieldDescription{}, m.Fields...)})
		case *pgproto3.CommandComplete:
			out = append(out, &pgproto3.CommandComplete{CommandTag: append([]byte{}, m.CommandTag...)})
		default:
			out = append(out, m)
		}
	}
}

type byteReader struct{ b []byte }

func (r *byteReader) Read(p []byte) (int, error) {
	if len(r.b) == 0 {
		return 0, net.ErrClosed
	}
	n := copy(p, r.b)
	r.b = r.b[n:]
	return n, nil
}

// Values are written as text; int4 columns are clamped, NULL stays NULL.
func TestResultSetRow(t *testing.T) {
	r := newResult(columns("a:text b:int4 c:int8 d:numeric e:text"))
	r.row("x", int64(math.MaxInt64), int64(math.MaxInt64), uint32(7), nil)
	msgs := decode(t, r.finish())
	if len(msgs) != 3 {
		t.Fatalf("%d messages: %#v", len(msgs), msgs)
	}
	rd := msgs[0].(*pgproto3.RowDescription)
	oids := []uint32{25, 23, 20, 1700, 25}
	for i, f := range rd.Fields {
		if f.DataTypeOID != oids[i] {
			t.Errorf("column %s: type %d, want %d", f.Name, f.DataTypeOID, oids[i])
		}
	}
	got := msgs[1].(*pgproto3.DataRow).Values
	want := []string{"x", "2147483647", "9223372036854775807", "7"}
	for i, w := range want {
		if string(got[i]) != w {
			t.Errorf("value %d: %q, want %q", i, got[i], w)
		}
	}
	if got[4] != nil {
		t.Errorf("NULL came out as %q", got[4])
	}
	if tag := string(msgs[2].(*pgproto3.CommandComplete).CommandTag); tag != "SHOW" {
		t.Errorf("tag %q", tag)
	}
}

func TestAddrPort(t *testing.T) {
	sock := &net.UnixAddr{Name: "/tmp/.s.PGSQL.6432", Net: "unix"}
	for _, tc := range []struct {
		a, sock net.Addr
		addr    string
		port    int
	}{
		{nil, nil, "", 0},
		{&net.TCPAddr{IP: net.IPv4(10, 0, 0, 1), Port: 5432}, nil, "10.0.0.1", 5432},
		{&net.UnixAddr{Name: "@", Net: "unix"}, sock, "unix", 6432},
		{sock, nil, "unix", 6432},
	} {
		addr, port := addrPort(tc.a, tc.sock)
		if addr != tc.addr || port != tc.port {
			t.Errorf("addrPort(%v) = %s %d, want %s %d", tc.a, addr, port, tc.addr, tc.port)
		}
	}
	if h, p := splitAddr("[::1]:5432"); h != "::1" || p != 5432 {
		t.Errorf("splitAddr: %s %d", h, p)
	}
}

// Averages need two samples a stats period apart; a database whose totals
// went down (its pool was dropped) has none.
func TestAverages(t *testing.T) {
	const statsPeriod = time.Minute
	var sm sampler
	t0 := time.Unix(1000, 0)
	first := map[string]Stats{"a": {Transactions: 10, Queries: 20}, "b": {Queries: 100}}
	if got := sm.averages(t0, first, statsPeriod); len(got) != 0 {
		t.Fatalf("one sample: %v", got)
	}
	later := map[string]Stats{
		"a": {Transactions: 70, Queries: 140, BytesReceived: 600, TransactionTime: 60 * time.Millisecond, WaitTime: time.Second},
		"b": {Queries: 5},
	}
	if got := sm.averages(t0.Add(time.Second), later, statsPeriod); len(got) != 0 {
		t.Fatalf("a sample within the period was kept: %v", got)
	}
	got := sm.averages(t0.Add(statsPeriod), later, statsPeriod)
	want := [7]int64{1, 2, 10, 0, 1000, 0, 16666}
	if got["a"] != want {
		t.Errorf("a: %v, want %v", got["a"], want)
	}
	if _, ok := got["b"]; ok {
		t.Errorf("b restarted but has averages: %v", got["b"])
	}
}
