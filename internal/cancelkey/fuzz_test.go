package cancelkey

import (
	"bytes"
	"testing"
)

// FuzzParseCancelRequest feeds arbitrary CancelRequest bodies (after the
// length) to the parser: it must never panic, what it accepts must have a
// secret PostgreSQL allows, and an accepted key must match itself and be
// forwardable no more than MaxTTL times.
func FuzzParseCancelRequest(f *testing.F) {
	f.Add(cancelRequest(Key{PID: 1234, Secret: []byte{1, 2, 3, 4}}))
	f.Add(cancelRequest(Instance(0).Issue(2)))
	f.Add(cancelRequest(Instance(MaxInstance).Issue(0)))
	f.Add(cancelRequest(Key{PID: 1, Secret: bytes.Repeat([]byte{0xff}, MaxSecretLen)}))
	f.Add([]byte{4, 210, 22, 46, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, body []byte) {
		k, err := ParseCancelRequest(body)
		if err != nil {
			return
		}
		if len(k.Secret) == 0 || len(k.Secret) > MaxSecretLen {
			t.Fatalf("accepted a secret of %d bytes", len(k.Secret))
		}
		if !bytes.Equal(cancelRequest(k), body) {
			t.Fatalf("re-encoding %+v gives %x, not %x", k, cancelRequest(k), body)
		}
		for _, in := range []Instance{0, 1, MaxInstance} {
			if !in.Matches(k, k) {
				t.Fatalf("instance %d: key %+v does not match itself", in, k)
			}
			if o := in.Owner(k); o > MaxInstance || (in == 0 && o != 0) {
				t.Fatalf("instance %d: owner %d", in, o)
			}
		}
		for hops := 0; ; hops++ {
			next, ok := k.Forwarded()
			if !ok {
				break
			}
			if hops >= MaxTTL {
				t.Fatal("forwarded more than MaxTTL times")
			}
			k = next
		}
	})
}
