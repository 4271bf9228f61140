package cancelkey

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/muxpg/mux/internal/wire"
)

// cancelRequest builds the body of a CancelRequest (after its length).
func cancelRequest(k Key) []byte {
	b := binary.BigEndian.AppendUint32(nil, wire.CancelRequestCode)
	b = binary.BigEndian.AppendUint32(b, k.PID)
	return append(b, k.Secret...)
}

func TestIssueLayout(t *testing.T) {
	for _, tc := range []struct {
		in        Instance
		minor     uint32
		secretLen int
	}{
		{0, 0, ShortSecretLen},
		{0, 2, LongSecretLen},
		{1, 0, ShortSecretLen},
		{MaxInstance, 0, ShortSecretLen},
		{4242, 2, LongSecretLen},
	} {
		for range 200 {
			k := tc.in.Issue(tc.minor)
			if len(k.Secret) != tc.secretLen {
				t.Fatalf("instance %d, 3.%d: secret of %d bytes, want %d", tc.in, tc.minor, len(k.Secret), tc.secretLen)
			}
			if k.PID == 0 || k.PID>>31 != 0 {
				t.Fatalf("instance %d: PID %#x is not a positive PID", tc.in, k.PID)
			}
			if got := tc.in.Owner(k); got != tc.in {
				t.Fatalf("instance %d issued a key Owner says is %d's", tc.in, got)
			}
			if tc.in != 0 && (k.TTL() != MaxTTL || k.PID&clientMask == 0) {
				t.Fatalf("fleet key %#x/%x: TTL %d, want %d; client bits must not be zero", k.PID, k.Secret, k.TTL(), MaxTTL)
			}
			if k.Long() != (tc.minor >= 2) {
				t.Fatalf("3.%d key: Long() = %v", tc.minor, k.Long())
			}
		}
	}
}

// TestIssueAloneUsesEveryBit checks a lone instance keeps today's keys:
// 31 random PID bits, whatever the instance field would say.
func TestIssueAloneUsesEveryBit(t *testing.T) {
	var or uint32
	for range 1000 {
		or |= Instance(0).Issue(0).PID
	}
	if or != pidMask {
		t.Fatalf("PIDs of a lone instance used bits %#x, want %#x", or, pidMask)
	}
}

func TestBackendKeyDataRoundTrip(t *testing.T) {
	for _, minor := range []uint32{0, 2} {
		k := Instance(7).Issue(minor)
		msg := AppendBackendKeyData(nil, k)
		if typ, n := wire.Header(msg); typ != 'K' || n != len(msg)-1 || n != 4+pidLen+len(k.Secret) {
			t.Fatalf("BackendKeyData header %c/%d for %d bytes", typ, n, len(msg))
		}
		var m pgproto3.BackendKeyData
		if err := m.Decode(msg[5:]); err != nil {
			t.Fatal(err)
		}
		if m.ProcessID != k.PID || !bytes.Equal(m.SecretKey, k.Secret) {
			t.Fatalf("decoded %d/%x, issued %d/%x", m.ProcessID, m.SecretKey, k.PID, k.Secret)
		}
		got, err := ParseCancelRequest(cancelRequest(k))
		if err != nil || !Instance(7).Matches(k, got) {
			t.Fatalf("3.%d: CancelRequest echoing the key: %+v, %v; does not match", minor, got, err)
		}
	}
}

func TestParseCancelRequestLengths(t *testing.T) {
	for n := 0; n <= cancelCodeLen+pidLen+MaxSecretLen+2; n++ {
		body := make([]byte, n)
		if n >= 4 {
			binary.BigEndian.PutUint32(body, wire.CancelRequestCode)
		}
		_, err := ParseCancelRequest(body)
		ok := n >= 9 && n <= 8+MaxSecretLen
		if (err == nil) != ok {
			t.Fatalf("body of %d bytes: err %v, want ok=%v", n, err, ok)
		}
	}
	if _, err := ParseCancelRequest([]byte{0, 3, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8}); err == nil {
		t.Fatal("a StartupMessage code parsed as a CancelRequest")
	}
}

func TestParseCancelRequestCopies(t *testing.T) {
	body := cancelRequest(Key{PID: 9, Secret: []byte{1, 2, 3, 4}})
	k, _ := ParseCancelRequest(body)
	body[8] = 0xff
	if k.Secret[0] != 1 {
		t.Fatal("the parsed secret aliases the packet")
	}
}

func TestMatches(t *testing.T) {
	short := Key{PID: 5, Secret: []byte{1, 2, 3, 4}}
	long := Key{PID: 5, Secret: bytes.Repeat([]byte{9}, LongSecretLen)}
	flip := func(k Key, i int, bit byte) Key {
		s := append([]byte(nil), k.Secret...)
		s[i] ^= bit
		return Key{PID: k.PID, Secret: s}
	}
	for _, tc := range []struct {
		name        string
		in          Instance
		issued, got Key
		want        bool
	}{
		{"same 3.0 key", 0, short, short, true},
		{"same 3.2 key", 0, long, long, true},
		{"other PID", 0, short, Key{PID: 6, Secret: short.Secret}, false},
		{"first byte differs", 0, short, flip(short, 0, 1), false},
		{"last bit differs, alone", 0, short, flip(short, 3, 1), false},
		{"hop count differs, fleet", 3, short, flip(short, 3, 1), true},
		{"high bit of last byte differs, fleet", 3, short, flip(short, 3, 0x80), false},
		{"3.0 request for a 3.2 key", 0, long, Key{PID: 5, Secret: long.Secret[:4]}, false},
		{"3.2 request for a 3.0 key", 0, short, Key{PID: 5, Secret: append(append([]byte(nil), short.Secret...), 0)}, false},
		{"empty secrets", 0, Key{PID: 5}, Key{PID: 5}, false},
	} {
		if got := tc.in.Matches(tc.issued, tc.got); got != tc.want {
			t.Errorf("%s: Matches = %v, want %v", tc.name, got, tc.want)
		}
	}
}

func TestForwardedSpendsTheHopCount(t *testing.T) {
	k := Instance(12).Issue(0)
	hops := 0
	for {
		next, ok := k.Forwarded()
		if !ok {
			break
		}
		if !Instance(12).Matches(k, next) || Instance(12).Owner(next) != 12 {
			t.Fatal("a forwarded key no longer matches or names another instance")
		}
		k = next
		hops++
	}
	if hops != MaxTTL {
		t.Fatalf("forwarded %d times, want %d", hops, MaxTTL)
	}
}

func TestHead(t *testing.T) {
	if got := (Key{Secret: []byte{1, 2, 3, 4, 5}}).Head(); got != 0x01020304 {
		t.Fatalf("Head = %#x", got)
	}
}
