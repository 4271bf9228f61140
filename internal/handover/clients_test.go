package handover

import (
	"bytes"
	"reflect"
	"testing"
)

func sampleStates() []ClientState {
	return []ClientState{
		{
			Database: "app", User: "alice", KeyPID: 0x1234abcd, KeySecret: []byte{1, 2, 3, 4},
			Connected:   1733360000123456789,
			Params:      []Param{{"TimeZone", "Asia/Tokyo"}, {"application_name", ""}},
			Settings:    []Param{{"search_path", "a, b"}, {"app.x", "1"}},
			CustomNames: []string{"app.x"},
			Statements: []Statement{
				{Name: "", Query: "SELECT 1"},
				{Name: "s1", Query: "SELECT $1::int, $2", ParamOIDs: []uint32{23, 0xffffffff}},
			},
		},
		{Database: "app", User: "bob", KeyPID: 7, KeySecret: bytes.Repeat([]byte{9}, 32), Connected: -5},
	}
}

func TestBatchRoundTrip(t *testing.T) {
	want := sampleStates()
	got, err := DecodeBatch(AppendBatch(nil, want))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded %+v\nwant %+v", got, want)
	}
}

func TestBatchRefusesDamage(t *testing.T) {
	b := AppendBatch(nil, sampleStates())
	for i := 0; i < len(b); i++ {
		if _, err := DecodeBatch(b[:i]); err == nil {
			t.Fatalf("a batch cut to %d of %d bytes decoded", i, len(b))
		}
	}
	if _, err := DecodeBatch(append(append([]byte(nil), b...), 0)); err == nil {
		t.Fatal("trailing byte accepted")
	}
	other := append([]byte(nil), b...)
	other[0] = batchVersion + 1
	if _, err := DecodeBatch(other); err == nil {
		t.Fatal("another version accepted")
	}
	// A count far beyond the bytes present is refused before allocating.
	huge := []byte{batchVersion, 1, 0xff, 0xff, 0xff, 0xff, 0x0f}
	if _, err := DecodeBatch(huge); err == nil {
		t.Fatal("a client length beyond the batch accepted")
	}
}

// FuzzDecodeBatch: any bytes decode or fail, never panic, and what decodes
// encodes back to a batch that decodes the same.
func FuzzDecodeBatch(f *testing.F) {
	f.Add(AppendBatch(nil, sampleStates()))
	f.Add(AppendBatch(nil, nil))
	f.Add([]byte{batchVersion, 1, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		states, err := DecodeBatch(b)
		if err != nil {
			return
		}
		again, err := DecodeBatch(AppendBatch(nil, states))
		if err != nil {
			t.Fatalf("re-encoded batch does not decode: %v", err)
		}
		if !reflect.DeepEqual(again, states) {
			t.Fatalf("round trip changed the states")
		}
	})
}
