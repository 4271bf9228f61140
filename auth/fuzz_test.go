package auth

import (
	"bytes"
	"errors"
	"testing"
)

var fuzzSecret = NewSCRAMSecret("pencil", []byte("0123456789abcdef"), 1)

func FuzzSCRAMServerClientFirst(f *testing.F) {
	for _, s := range []string{
		"n,,n=,r=abc", "y,,n=*,r=abc,x=ext", "p=tls-server-end-point,,n=,r=abc",
		"n,a=x,n=,r=abc", "n,,n==2C,r=abc", rfcClientFirst, "n,,m=x,n=,r=a", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, msg []byte) {
		s := NewSCRAMServer(fuzzSecret)
		sf, err := s.HandleClientFirst(msg)
		if err != nil {
			if sf != nil {
				t.Fatal("message returned with an error")
			}
			return
		}
		if !bytes.HasPrefix(sf, []byte("r=")) {
			t.Fatalf("server-first %q", sf)
		}
	})
}

func FuzzSCRAMServerClientFinal(f *testing.F) {
	for _, s := range []string{
		"c=biws,r=abcSRV,p=" + zeroKey, "c=eSws,r=abcSRV,x=y,p=" + zeroKey,
		"c=biws,r=abcSRV", "c=biws,r=abcSRV,p=AAAA", rfcClientFinal, "",
	} {
		f.Add([]byte("n,,n=,r=abc"), []byte(s))
	}
	f.Add([]byte(rfcClientFirst), []byte(rfcClientFinal))
	f.Fuzz(func(t *testing.T, first, final []byte) {
		rs, ms := NewSCRAMServer(fuzzSecret), NewMockSCRAMServer("u")
		rs.nonce, ms.nonce = "SRV", "SRV"
		_, err1 := rs.HandleClientFirst(first)
		_, err2 := ms.HandleClientFirst(first)
		if (err1 == nil) != (err2 == nil) || err1 != nil && err1.Error() != err2.Error() {
			t.Fatalf("mock and real differ on client-first: %v / %v", err1, err2)
		}
		if err1 != nil {
			return
		}
		sfin, err1 := rs.HandleClientFinal(final)
		_, err2 = ms.HandleClientFinal(final)
		if _, ok := rs.ClientKey(); ok != (err1 == nil) {
			t.Fatal("ClientKey availability disagrees with the result")
		}
		if _, ok := ms.ClientKey(); ok {
			t.Fatal("mock has a client key")
		}
		if err1 == nil && !bytes.HasPrefix(sfin, []byte("v=")) {
			t.Fatalf("server-final %q", sfin)
		}
		if err1 != nil && !errors.Is(err1, ErrAuthFailed) {
			if err2 == nil || err2.Error() != err1.Error() {
				t.Fatalf("mock and real differ on malformed client-final: %v / %v", err1, err2)
			}
		} else if !errors.Is(err2, ErrAuthFailed) {
			t.Fatalf("mock did not fail with ErrAuthFailed: %v (real: %v)", err2, err1)
		}
	})
}

func FuzzSCRAMClientServerFirst(f *testing.F) {
	for _, s := range []string{
		"r=CNs,s=c2FsdA==,i=1", "r=CNs,s=c2FsdA==,i=1,x=y", "m=x,r=CNs,s=c2FsdA==,i=1",
		"r=CNs,s=c2FsdA==,i=1000001", "r=CN,s=c2FsdA==,i=1", "",
	} {
		f.Add([]byte(s), []byte("v="+zeroKey))
	}
	f.Add([]byte("r=CNs,s=c2FsdA==,i=2"), []byte("e=invalid-proof"))
	f.Fuzz(func(t *testing.T, first, final []byte) {
		// A client with keys parses exactly as one with a password but
		// skips PBKDF2, whose cost a hostile i= could push to a second.
		c := NewSCRAMClientWithKeys([32]byte{1}, [32]byte{2})
		c.nonce = "CN"
		c.ClientFirst()
		cfin, err := c.HandleServerFirst(first)
		if err != nil {
			return
		}
		if !bytes.HasPrefix(cfin, []byte("c=biws,r=CN")) {
			t.Fatalf("client-final %q", cfin)
		}
		_ = c.HandleServerFinal(final)
	})
}

func FuzzParseSecret(f *testing.F) {
	for _, s := range []string{
		"", "pencil", "md53175bce1d3201d16594cebf9d7eb3f9d", rfcSecret(f).String(),
		"SCRAM-SHA-256$4096:c2FsdA==$" + zeroKey + ":" + zeroKey, "SCRAM-SHA-256$x",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		sec, err := ParseSecret(s)
		if err != nil {
			return
		}
		switch sec.Kind {
		case SecretPlain:
			if sec.Plain != s {
				t.Fatal("plain secret changed")
			}
		case SecretMD5:
			if sec.MD5 != s {
				t.Fatal("md5 secret changed")
			}
		case SecretSCRAM:
			again, err := ParseSecret(sec.SCRAM.String())
			if err != nil || again.Kind != SecretSCRAM || again.SCRAM.String() != sec.SCRAM.String() {
				t.Fatalf("round trip of %q failed: %v", s, err)
			}
		default:
			t.Fatalf("kind %v", sec.Kind)
		}
	})
}
