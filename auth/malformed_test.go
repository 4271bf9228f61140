package auth

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

var (
	zeroKey = base64.StdEncoding.EncodeToString(make([]byte, 32))
	long    = strings.Repeat("a", MaxMessageLen)
)

func TestServerClientFirstMalformed(t *testing.T) {
	secret := NewSCRAMSecret("pw", nil, 1)
	for _, ok := range []string{
		"n,,n=,r=abc",
		"y,,n=*,r=abc,x=ext",
		"n,,n==2C=3D,r=abc",
		"n,,n=user,r=" + strings.Repeat("~", 100),
	} {
		if _, err := NewSCRAMServer(secret).HandleClientFirst([]byte(ok)); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, tc := range []struct{ name, msg string }{
		{"empty", ""},
		{"oversized", "n,,n=,r=" + long},
		{"channel binding", "p=tls-server-end-point,,n=,r=abc"},
		{"bad flag", "x,,n=,r=abc"},
		{"flag only", "n"},
		{"no authzid separator", "n,"},
		{"no bare", "n,,"},
		{"authzid", "n,a=bob,n=,r=abc"},
		{"junk authzid", "n,bob,n=,r=abc"},
		{"missing user", "n,,r=abc"},
		{"missing nonce", "n,,n="},
		{"empty nonce", "n,,n=,r="},
		{"nonce with DEL", "n,,n=,r=ab\x7fc"},
		{"nonce with space", "n,,n=,r=ab c"},
		{"nonce with NUL", "n,,n=,r=abc\x00"},
		{"bad saslname", "n,,n=a=b,r=abc"},
		{"truncated escape", "n,,n=a=2,r=abc"},
		{"mandatory extension", "n,,m=x,n=,r=abc"},
		{"mandatory extension later", "n,,n=,r=abc,m=x"},
		{"trailing comma", "n,,n=,r=abc,"},
		{"bad extension name", "n,,n=,r=abc,1=x"},
		{"empty extension value", "n,,n=,r=abc,x="},
		{"swapped attributes", "n,,r=abc,n="},
	} {
		_, err := NewSCRAMServer(secret).HandleClientFirst([]byte(tc.msg))
		if err == nil {
			t.Errorf("%s: accepted %q", tc.name, tc.msg)
		} else if errors.Is(err, ErrAuthFailed) {
			t.Errorf("%s: malformed input reported as auth failure", tc.name)
		}
	}
}

func TestServerClientFinalMalformed(t *testing.T) {
	secret := NewSCRAMSecret("pw", nil, 1)
	const nonce = "abcSRV"
	for _, tc := range []struct {
		name, first, msg string
		authFailed       bool
	}{
		{"empty", "", "", false},
		{"oversized", "", "c=biws,r=" + nonce + ",p=" + zeroKey + "," + long, false},
		{"missing proof", "", "c=biws,r=" + nonce, false},
		{"proof not last", "", "c=biws,p=" + zeroKey + ",r=" + nonce, false},
		{"extension after proof", "", "c=biws,r=" + nonce + ",p=" + zeroKey + ",x=y", false},
		{"missing c", "", "r=" + nonce + ",p=" + zeroKey, false},
		{"missing r", "", "c=biws,x=y,p=" + zeroKey, false},
		{"bad c base64", "", "c=b!ws,r=" + nonce + ",p=" + zeroKey, false},
		{"bad proof base64", "", "c=biws,r=" + nonce + ",p=" + zeroKey[:43] + "!", false},
		{"short proof", "", "c=biws,r=" + nonce + ",p=AAAA", false},
		{"empty proof", "", "c=biws,r=" + nonce + ",p=", false},
		{"proof with newline", "", "c=biws,r=" + nonce + ",p=" + zeroKey[:20] + "\n" + zeroKey[20:], false},
		{"bad extension", "", "c=biws,r=" + nonce + ",9=x,p=" + zeroKey, false},
		{"wrong nonce", "", "c=biws,r=abcXYZ,p=" + zeroKey, true},
		{"client nonce only", "", "c=biws,r=abc,p=" + zeroKey, true},
		{"y echo for n", "", "c=eSws,r=" + nonce + ",p=" + zeroKey, true},
		{"n echo for y", "y,,n=,r=abc", "c=biws,r=" + nonce + ",p=" + zeroKey, true},
		{"channel binding data", "", "c=cD10bHMtc2VydmVyLWVuZC1wb2ludCws,r=" + nonce + ",p=" + zeroKey, true},
		{"wrong proof", "", "c=biws,r=" + nonce + ",x=ext,p=" + zeroKey, true},
	} {
		s := NewSCRAMServer(secret)
		s.nonce = "SRV"
		first := tc.first
		if first == "" {
			first = "n,,n=,r=abc"
		}
		if _, err := s.HandleClientFirst([]byte(first)); err != nil {
			t.Fatal(err)
		}
		_, err := s.HandleClientFinal([]byte(tc.msg))
		switch {
		case err == nil:
			t.Errorf("%s: accepted %q", tc.name, tc.msg)
		case errors.Is(err, ErrAuthFailed) != tc.authFailed:
			t.Errorf("%s: got %v, want auth failure %v", tc.name, err, tc.authFailed)
		}
	}
}

func TestClientServerFirstMalformed(t *testing.T) {
	for _, tc := range []struct{ name, msg string }{
		{"empty", ""},
		{"oversized", "r=CN" + long + ",s=c2FsdA==,i=1"},
		{"nonce not extended", "r=CN,s=c2FsdA==,i=1"},
		{"nonce not prefixed", "r=XXCN,s=c2FsdA==,i=1"},
		{"nonce non-printable", "r=CN\x01,s=c2FsdA==,i=1"},
		{"missing salt", "r=CNs,i=1"},
		{"missing iterations", "r=CNs,s=c2FsdA=="},
		{"empty salt", "r=CNs,s=,i=1"},
		{"bad salt", "r=CNs,s=c2FsdA,i=1"},
		{"salt with newline", "r=CNs,s=c2Fs\ndA==,i=1"},
		{"zero iterations", "r=CNs,s=c2FsdA==,i=0"},
		{"negative iterations", "r=CNs,s=c2FsdA==,i=-1"},
		{"plus iterations", "r=CNs,s=c2FsdA==,i=+1"},
		{"too many iterations", "r=CNs,s=c2FsdA==,i=1000001"},
		{"huge iterations", "r=CNs,s=c2FsdA==,i=99999999999999999999999"},
		{"text iterations", "r=CNs,s=c2FsdA==,i=many"},
		{"mandatory extension", "m=x,r=CNs,s=c2FsdA==,i=1"},
		{"wrong order", "s=c2FsdA==,r=CNs,i=1"},
		{"trailing comma", "r=CNs,s=c2FsdA==,i=1,"},
	} {
		c, _ := NewSCRAMClient("pw")
		c.nonce = "CN"
		c.ClientFirst()
		if _, err := c.HandleServerFirst([]byte(tc.msg)); err == nil {
			t.Errorf("%s: accepted %q", tc.name, tc.msg)
		}
	}
	c, _ := NewSCRAMClient("pw")
	c.nonce = "CN"
	c.ClientFirst()
	if _, err := c.HandleServerFirst([]byte("r=CNs,s=c2FsdA==,i=10000,x=ext")); err != nil {
		t.Errorf("valid message with extension: %v", err)
	}
	kc := NewSCRAMClientWithKeys([32]byte{}, [32]byte{})
	kc.nonce = "CN"
	kc.ClientFirst()
	if _, err := kc.HandleServerFirst([]byte("r=CNs,s=c2FsdA==,i=1000000")); err != nil {
		t.Errorf("MaxSCRAMIterations refused: %v", err)
	}
}

func TestClientServerFinalMalformed(t *testing.T) {
	for _, msg := range []string{
		"",
		"v=" + zeroKey + "," + long,
		"v=",
		"v=AAAA",
		"v=" + zeroKey[:43] + "!",
		"x=" + zeroKey,
		"v=" + zeroKey + ",",
		"v=" + zeroKey, // well-formed, wrong signature
	} {
		c, _ := NewSCRAMClient("pw")
		c.nonce = "CN"
		c.ClientFirst()
		if _, err := c.HandleServerFirst([]byte("r=CNs,s=c2FsdA==,i=1")); err != nil {
			t.Fatal(err)
		}
		if err := c.HandleServerFinal([]byte(msg)); err == nil {
			t.Errorf("accepted %q", msg)
		}
	}
}
