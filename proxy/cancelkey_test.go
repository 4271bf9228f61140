package proxy

import (
	"testing"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/cancelkey"
)

// TestRegisterLookupKey checks the client registry with both key lengths:
// a 3.0 key lives in clientConn, a 3.2 key's whole secret in longKeys, and
// only the exact key finds its client.
func TestRegisterLookupKey(t *testing.T) {
	for _, in := range []cancelkey.Instance{0, 5} {
		p := &Proxy{keys: map[uint32]*clientConn{}, instance: in}
		p.snap.Store(&snapshot{cfg: config.Default()})
		for _, minor := range []uint32{0, 2} {
			c := &clientConn{p: p}
			k, err := p.register(c, minor)
			if err != nil {
				t.Fatal(err)
			}
			if got := p.lookupKey(k); got != c {
				t.Fatalf("instance %d, 3.%d: the issued key finds %p, want %p", in, minor, got, c)
			}
			wrong := cancelkey.Key{PID: k.PID, Secret: append([]byte(nil), k.Secret...)}
			wrong.Secret[0] ^= 1
			if p.lookupKey(wrong) != nil {
				t.Fatalf("instance %d, 3.%d: a wrong secret finds the client", in, minor)
			}
			if p.lookupKey(cancelkey.Key{PID: k.PID, Secret: k.Secret[:4]}) != nil && k.Long() {
				t.Fatalf("instance %d: the head of a 3.2 key finds the client", in)
			}
			p.unregister(c)
			if p.lookupKey(k) != nil || len(p.longKeys) != 0 {
				t.Fatalf("instance %d, 3.%d: key still found after unregister", in, minor)
			}
		}
	}
}
