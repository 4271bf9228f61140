package auth

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

// RFC 7677, section 3.
const (
	rfcClientFirst = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO"
	rfcServerFirst = "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096"
	rfcClientFinal = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ="
	rfcServerFinal = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4="
)

func rfcSecret(t testing.TB) *SCRAMSecret {
	salt, err := base64.StdEncoding.DecodeString("W22ZaJ0SNY7soEsUEjb6gQ==")
	if err != nil {
		t.Fatal(err)
	}
	return NewSCRAMSecret("pencil", salt, 4096)
}

func TestRFC7677(t *testing.T) {
	c, err := NewSCRAMClient("pencil")
	if err != nil {
		t.Fatal(err)
	}
	c.user, c.nonce = "user", "rOprNGfwEbeRWgbNEkqO"
	s := NewSCRAMServer(rfcSecret(t))
	s.nonce = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0"

	cf := c.ClientFirst()
	if string(cf) != rfcClientFirst {
		t.Fatalf("client-first = %q", cf)
	}
	sf, err := s.HandleClientFirst(cf)
	if err != nil {
		t.Fatal(err)
	}
	if string(sf) != rfcServerFirst {
		t.Fatalf("server-first = %q", sf)
	}
	if s.clientUser != "user" {
		t.Fatalf("user = %q", s.clientUser)
	}
	cfin, err := c.HandleServerFirst(sf)
	if err != nil {
		t.Fatal(err)
	}
	if string(cfin) != rfcClientFinal {
		t.Fatalf("client-final = %q", cfin)
	}
	sfin, err := s.HandleClientFinal(cfin)
	if err != nil {
		t.Fatal(err)
	}
	if string(sfin) != rfcServerFinal {
		t.Fatalf("server-final = %q", sfin)
	}
	if err := c.HandleServerFinal(sfin); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.ClientKey(); !ok {
		t.Fatal("no client key after success")
	}
}

// exchange runs a full exchange and returns the server's final error.
func exchange(t *testing.T, c *SCRAMClient, s *SCRAMServer) error {
	t.Helper()
	sf, err := s.HandleClientFirst(c.ClientFirst())
	if err != nil {
		t.Fatal(err)
	}
	cfin, err := c.HandleServerFirst(sf)
	if err != nil {
		t.Fatal(err)
	}
	sfin, err := s.HandleClientFinal(cfin)
	if err != nil {
		return err
	}
	if err := c.HandleServerFinal(sfin); err != nil {
		t.Fatalf("client rejected server-final: %v", err)
	}
	return nil
}

func TestRoundTrip(t *testing.T) {
	secret := NewSCRAMSecret("s3cret pass", nil, 0)
	if secret.Iterations != DefaultSCRAMIterations || len(secret.Salt) != defaultSaltLen {
		t.Fatalf("defaults not applied: %d, %d", secret.Iterations, len(secret.Salt))
	}

	c, _ := NewSCRAMClient("s3cret pass")
	s := NewSCRAMServer(secret)
	if err := exchange(t, c, s); err != nil {
		t.Fatalf("right password: %v", err)
	}
	ck, ok := s.ClientKey()
	if !ok {
		t.Fatal("no client key")
	}

	// Pass-through: the recovered ClientKey and the ServerKey log in.
	pc := NewSCRAMClientWithKeys(ck, secret.ServerKey)
	ps := NewSCRAMServer(secret)
	if err := exchange(t, pc, ps); err != nil {
		t.Fatalf("pass-through: %v", err)
	}
	if ck2, _ := ps.ClientKey(); ck2 != ck {
		t.Fatal("pass-through recovered a different client key")
	}

	c, _ = NewSCRAMClient("wrong")
	s = NewSCRAMServer(secret)
	if err := exchange(t, c, s); err != ErrAuthFailed {
		t.Fatalf("wrong password: %v", err)
	}
	if _, ok := s.ClientKey(); ok {
		t.Fatal("client key after failure")
	}
	if _, err := s.HandleClientFinal([]byte("c=biws,r=x,p=x")); err == nil {
		t.Fatal("server accepted a message after failing")
	}
}

func TestClientRejectsBadServerSignature(t *testing.T) {
	secret := NewSCRAMSecret("pw", nil, 1)
	c, _ := NewSCRAMClient("pw")
	s := NewSCRAMServer(secret)
	sf, _ := s.HandleClientFirst(c.ClientFirst())
	cfin, err := c.HandleServerFirst(sf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.HandleClientFinal(cfin); err != nil {
		t.Fatal(err)
	}
	bad := "v=" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	if err := c.HandleServerFinal([]byte(bad)); err != errServerSig {
		t.Fatalf("got %v", err)
	}
}

func TestClientServerError(t *testing.T) {
	c, _ := NewSCRAMClient("pw")
	first := string(c.ClientFirst())
	nonce := strings.TrimPrefix(first, "n,,n=,r=")
	if _, err := c.HandleServerFirst([]byte("r=" + nonce + "xyz,s=c2FsdA==,i=1")); err != nil {
		t.Fatal(err)
	}
	err := c.HandleServerFinal([]byte("e=invalid-proof"))
	if err == nil || !strings.Contains(err.Error(), "invalid-proof") {
		t.Fatalf("got %v", err)
	}
}

func mockSalt(t *testing.T, user string) string {
	t.Helper()
	s := NewMockSCRAMServer(user)
	sf, err := s.HandleClientFirst([]byte("n,,n=,r=abc"))
	if err != nil {
		t.Fatal(err)
	}
	_, rest, _ := strings.Cut(string(sf), ",s=")
	return rest
}

func TestMock(t *testing.T) {
	a1, a2, b := mockSalt(t, "alice"), mockSalt(t, "alice"), mockSalt(t, "bob")
	if a1 != a2 {
		t.Fatalf("mock salt not stable: %q vs %q", a1, a2)
	}
	if a1 == b {
		t.Fatal("mock salt the same for different users")
	}
	if !strings.HasSuffix(a1, ",i=4096") {
		t.Fatalf("mock iterations: %q", a1)
	}

	for _, pw := range []string{"", "pencil", "alice"} {
		c, err := NewSCRAMClient(pw + "x")
		if err != nil {
			t.Fatal(err)
		}
		s := NewMockSCRAMServer("alice")
		if err := exchange(t, c, s); err != ErrAuthFailed {
			t.Fatalf("mock: %v", err)
		}
	}

	// Even a client that somehow knows the keys the mock checks against fails.
	c := NewSCRAMClientWithKeys([32]byte{}, [32]byte{})
	if err := exchange(t, c, NewMockSCRAMServer("alice")); err != ErrAuthFailed {
		t.Fatalf("mock with zero keys: %v", err)
	}
}

func TestStateOrder(t *testing.T) {
	s := NewSCRAMServer(NewSCRAMSecret("pw", nil, 1))
	if _, err := s.HandleClientFinal([]byte("c=biws,r=a,p=b")); err == nil {
		t.Fatal("final before first accepted")
	}
	c, _ := NewSCRAMClient("pw")
	if _, err := c.HandleServerFirst([]byte("r=a,s=c2FsdA==,i=1")); err == nil {
		t.Fatal("server-first before client-first accepted")
	}
	if err := c.HandleServerFinal([]byte("v=x")); err == nil {
		t.Fatal("server-final before client-final accepted")
	}
	if _, err := NewSCRAMClient(""); err == nil {
		t.Fatal("empty password accepted")
	}
}

func TestParseSecret(t *testing.T) {
	sec := rfcSecret(t)
	str := sec.String()
	const want = "SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$"
	if !strings.HasPrefix(str, want) {
		t.Fatalf("String() = %q", str)
	}
	got, err := ParseSecret(str)
	if err != nil {
		t.Fatal(err)
	}
	if got.Kind != SecretSCRAM || got.SCRAM.Iterations != 4096 || !bytes.Equal(got.SCRAM.Salt, sec.Salt) ||
		got.SCRAM.StoredKey != sec.StoredKey || got.SCRAM.ServerKey != sec.ServerKey {
		t.Fatalf("round trip: %+v", got.SCRAM)
	}
	if got.SCRAM.String() != str {
		t.Fatal("String after parse differs")
	}

	md5 := "md53175bce1d3201d16594cebf9d7eb3f9d"
	if got, err := ParseSecret(md5); err != nil || got.Kind != SecretMD5 || got.MD5 != md5 {
		t.Fatalf("md5: %+v %v", got, err)
	}
	for _, plain := range []string{"", "pencil", "md5", "md53175BCE1D3201D16594CEBF9D7EB3F9D", md5 + "0", "SCRAM-SHA-256"} {
		if got, err := ParseSecret(plain); err != nil || got.Kind != SecretPlain || got.Plain != plain {
			t.Fatalf("plain %q: %+v %v", plain, got, err)
		}
	}

	k := base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, bad := range []string{
		"SCRAM-SHA-256$",
		"SCRAM-SHA-256$4096:c2FsdA==",
		"SCRAM-SHA-256$4096:c2FsdA==$" + k,
		"SCRAM-SHA-256$0:c2FsdA==$" + k + ":" + k,
		"SCRAM-SHA-256$-1:c2FsdA==$" + k + ":" + k,
		"SCRAM-SHA-256$+5:c2FsdA==$" + k + ":" + k,
		"SCRAM-SHA-256$99999999999:c2FsdA==$" + k + ":" + k,
		"SCRAM-SHA-256$4096:$" + k + ":" + k,
		"SCRAM-SHA-256$4096:c2Fs\ndA==$" + k + ":" + k,
		"SCRAM-SHA-256$4096:c2FsdA$" + k + ":" + k,
		"SCRAM-SHA-256$4096:c2FsdA==$" + k + ":" + k[:40],
		"SCRAM-SHA-256$4096:c2FsdA==$" + k + ":" + k + "AAAA",
		"SCRAM-SHA-256$4096:c2FsdA==$" + k + ":" + k + ":" + k,
		"SCRAM-SHA-256$4096:c2FsdA==$" + k + ":" + k + "$",
	} {
		if _, err := ParseSecret(bad); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestMD5(t *testing.T) {
	const secret = "md53175bce1d3201d16594cebf9d7eb3f9d"
	if got := MD5Secret("postgres", "postgres"); got != secret {
		t.Fatalf("MD5Secret = %q", got)
	}
	salt := [4]byte{0x01, 0x02, 0x03, 0x04}
	// md5("3175bce1d3201d16594cebf9d7eb3f9d" + "\x01\x02\x03\x04"), computed with Python's hashlib.
	const want = "md568be9ed08db75f318087ab337aaea044"
	resp := MD5Response(secret, salt)
	if resp != want {
		t.Fatalf("MD5Response = %q, want %q", resp, want)
	}
	if !CheckMD5(secret, salt, resp) {
		t.Fatal("CheckMD5 rejected the right response")
	}
	if CheckMD5(secret, [4]byte{1, 2, 3, 5}, resp) || CheckMD5(secret, salt, resp[:34]) || CheckMD5(secret, salt, "") {
		t.Fatal("CheckMD5 accepted a wrong response")
	}
	if MD5Response("pencil", salt) != "" || CheckMD5("pencil", salt, "") {
		t.Fatal("non-md5 secret accepted")
	}
}

// A mock exchange announces scram_iterations, as a derived secret would.
func TestMockIterations(t *testing.T) {
	s := NewMockSCRAMServer("ghost")
	s.SetMockIterations(10000)
	sf, err := s.HandleClientFirst([]byte("n,,n=,r=abc"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(string(sf), ",i=10000") {
		t.Errorf("server-first %q, want i=10000", sf)
	}
	real := NewSCRAMServer(NewSCRAMSecret("pw", nil, 4096))
	real.SetMockIterations(10000)
	if real.secret.Iterations != 4096 {
		t.Error("SetMockIterations changed a real user's secret")
	}
}
