package login

import "testing"

func TestProtocolNegotiation(t *testing.T) {
	for _, tc := range []struct {
		minor   uint32
		unknown []string
		serve   uint32
		nv      uint32 // the version NegotiateProtocolVersion names; 0: none
	}{
		{minor: 0, serve: 0},
		{minor: 2, serve: 2},
		{minor: 1, serve: 0, nv: 3<<16 | 0},
		{minor: 3, serve: 2, nv: 3<<16 | 2},
		{minor: 0xffff, serve: 2, nv: 3<<16 | 2},
		{minor: 0, unknown: []string{"_pq_.a"}, serve: 0, nv: 3<<16 | 0},
		{minor: 2, unknown: []string{"_pq_.a", "_pq_.b"}, serve: 2, nv: 3<<16 | 2},
	} {
		st := &Startup{Minor: tc.minor, UnknownPQ: tc.unknown}
		if got := st.ProtocolMinor(); got != tc.serve {
			t.Errorf("3.%d: serves 3.%d, want 3.%d", tc.minor, got, tc.serve)
		}
		nv := st.Negotiation()
		switch {
		case tc.nv == 0 && nv != nil:
			t.Errorf("3.%d %v: NegotiateProtocolVersion %+v, want none", tc.minor, tc.unknown, nv)
		case tc.nv != 0 && nv == nil:
			t.Errorf("3.%d %v: no NegotiateProtocolVersion", tc.minor, tc.unknown)
		case nv != nil && (nv.NewestMinorProtocol != tc.nv || len(nv.UnrecognizedOptions) != len(tc.unknown)):
			t.Errorf("3.%d %v: NegotiateProtocolVersion %+v, want version %#x", tc.minor, tc.unknown, nv, tc.nv)
		}
	}
}
