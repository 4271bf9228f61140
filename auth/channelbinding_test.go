package auth

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strconv"
	"strings"
	"testing"
	"time"
)

const gs2Plus = "p=tls-server-end-point,,"

// plusExchange plays a client that sends gs2 and binds cb (the c= attribute
// is gs2 followed by cb), choosing mech, against s. It returns the first
// error of the server.
func plusExchange(t *testing.T, s *SCRAMServer, password, mech, gs2 string, cb []byte) error {
	t.Helper()
	if err := s.SelectMechanism(mech); err != nil {
		return err
	}
	bare := "n=,r=" + makeNonce()
	sf, err := s.HandleClientFirst([]byte(gs2 + bare))
	if err != nil {
		return err
	}
	f := strings.Split(string(sf), ",")
	salt, _ := b64.DecodeString(strings.TrimPrefix(f[1], "s="))
	iter, _ := strconv.Atoi(strings.TrimPrefix(f[2], "i="))
	salted, err := saltedPassword(password, salt, iter)
	if err != nil {
		t.Fatal(err)
	}
	clientKey := hmacSHA256(salted[:], clientKeyLabel)
	storedKey := sha256.Sum256(clientKey[:])
	noProof := "c=" + b64.EncodeToString(append([]byte(gs2), cb...)) + "," + f[0]
	sig := hmacSHA256(storedKey[:], authMessage(bare, string(sf), noProof))
	proof := xor32(clientKey, sig)
	_, err = s.HandleClientFinal([]byte(noProof + ",p=" + b64.EncodeToString(proof[:])))
	return err
}

func TestChannelBindingPlus(t *testing.T) {
	secret := NewSCRAMSecret("pw", nil, 0)
	cb := bytes.Repeat([]byte{7}, 32)
	other := bytes.Repeat([]byte{8}, 32)
	for _, tc := range []struct {
		name     string
		offer    bool
		mock     bool
		password string
		mech     string
		gs2      string
		cb       []byte
		want     string // "" success; "auth", "cb", "malformed", "mech", "unsupported"
		msg      string // substring of the error
	}{
		{name: "plus", offer: true, mech: MechanismSCRAMPlus, gs2: gs2Plus, cb: cb},
		{name: "plus wrong data", offer: true, mech: MechanismSCRAMPlus, gs2: gs2Plus, cb: other,
			want: "cb", msg: "SCRAM channel binding check failed"},
		{name: "plus no data", offer: true, mech: MechanismSCRAMPlus, gs2: gs2Plus,
			want: "cb", msg: "check failed"},
		{name: "plus wrong password", offer: true, password: "nope", mech: MechanismSCRAMPlus, gs2: gs2Plus, cb: cb,
			want: "auth"},
		{name: "plus unknown user", offer: true, mock: true, mech: MechanismSCRAMPlus, gs2: gs2Plus, cb: cb,
			want: "auth"},
		{name: "plus unknown user wrong data", offer: true, mock: true, mech: MechanismSCRAMPlus, gs2: gs2Plus, cb: other,
			want: "cb"},
		{name: "downgrade y", offer: true, mech: MechanismSCRAM, gs2: "y,,",
			want: "cb", msg: "SCRAM channel binding negotiation error"},
		{name: "no binding n", offer: true, mech: MechanismSCRAM, gs2: "n,,"},
		{name: "plus without p", offer: true, mech: MechanismSCRAMPlus, gs2: "n,,",
			want: "malformed", msg: "does not include channel binding data"},
		{name: "plus with y", offer: true, mech: MechanismSCRAMPlus, gs2: "y,,",
			want: "malformed"},
		{name: "p without plus", offer: true, mech: MechanismSCRAM, gs2: gs2Plus, cb: cb,
			want: "malformed", msg: "includes channel binding data"},
		{name: "other type", offer: true, mech: MechanismSCRAMPlus, gs2: "p=tls-unique,,", cb: cb,
			want: "malformed", msg: "unsupported channel binding type"},
		{name: "not offered y", mech: MechanismSCRAM, gs2: "y,,"},
		{name: "not offered plus", mech: MechanismSCRAMPlus, gs2: gs2Plus, cb: cb, want: "mech"},
		{name: "not offered p", mech: MechanismSCRAM, gs2: gs2Plus, cb: cb, want: "unsupported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := NewSCRAMServer(secret)
			if tc.mock {
				s = NewMockSCRAMServer("ghost")
			}
			if tc.offer {
				s.SetChannelBinding(cb)
			}
			pw := tc.password
			if pw == "" {
				pw = "pw"
			}
			err := plusExchange(t, s, pw, tc.mech, tc.gs2, tc.cb)
			var ok bool
			switch tc.want {
			case "":
				ok = err == nil
			case "auth":
				ok = errors.Is(err, ErrAuthFailed) && !errors.Is(err, ErrChannelBinding)
			case "cb":
				ok = errors.Is(err, ErrChannelBinding) && !errors.Is(err, ErrAuthFailed)
			case "malformed":
				ok = errors.Is(err, errMalformed)
			case "mech":
				ok = err != nil && strings.Contains(err.Error(), "not offered")
			case "unsupported":
				ok = errors.Is(err, errChannelBinding)
			}
			if !ok || (err != nil && !strings.Contains(err.Error(), tc.msg)) {
				t.Fatalf("got %v, want %s %q", err, tc.want, tc.msg)
			}
			if _, got := s.ClientKey(); got != (err == nil) {
				t.Fatalf("ClientKey ok = %v after %v", got, err)
			}
		})
	}
}

func TestChannelBindingMechanisms(t *testing.T) {
	s := NewSCRAMServer(NewSCRAMSecret("pw", nil, 0))
	if got := strings.Join(s.Mechanisms(), " "); got != "SCRAM-SHA-256" {
		t.Fatalf("plain: %s", got)
	}
	s.SetChannelBinding([]byte{1})
	if got := strings.Join(s.Mechanisms(), " "); got != "SCRAM-SHA-256-PLUS SCRAM-SHA-256" {
		t.Fatalf("TLS: %s", got)
	}
	if err := s.SelectMechanism("SCRAM-SHA-1"); err == nil {
		t.Fatal("accepted an unknown mechanism")
	}
}

// The client side of mux against a PLUS-offering server: it sends "n", which
// is accepted (the client does not support binding).
func TestChannelBindingClientN(t *testing.T) {
	secret := NewSCRAMSecret("pw", nil, 0)
	s := NewSCRAMServer(secret)
	s.SetChannelBinding([]byte{1, 2, 3})
	if err := s.SelectMechanism(MechanismSCRAM); err != nil {
		t.Fatal(err)
	}
	c, _ := NewSCRAMClient("pw")
	if err := exchange(t, c, s); err != nil {
		t.Fatal(err)
	}
}

func TestTLSServerEndPoint(t *testing.T) {
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	_, edKey, _ := ed25519.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		name string
		key  crypto.Signer
		alg  x509.SignatureAlgorithm
		sum  func([]byte) []byte
	}{
		{"ecdsa-sha256", p256, x509.ECDSAWithSHA256, func(b []byte) []byte { h := sha256.Sum256(b); return h[:] }},
		{"ecdsa-sha384", p384, x509.ECDSAWithSHA384, func(b []byte) []byte { h := sha512.Sum384(b); return h[:] }},
		{"ecdsa-sha512", p384, x509.ECDSAWithSHA512, func(b []byte) []byte { h := sha512.Sum512(b); return h[:] }},
		{"ed25519", edKey, x509.PureEd25519, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tmpl := &x509.Certificate{
				SerialNumber:       big.NewInt(1),
				Subject:            pkix.Name{CommonName: "mux"},
				NotBefore:          time.Now().Add(-time.Hour),
				NotAfter:           time.Now().Add(time.Hour),
				SignatureAlgorithm: tc.alg,
			}
			der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, tc.key.Public(), tc.key)
			if err != nil {
				t.Fatal(err)
			}
			cert, err := x509.ParseCertificate(der)
			if err != nil {
				t.Fatal(err)
			}
			got, err := TLSServerEndPoint(cert)
			if tc.sum == nil {
				if err == nil {
					t.Fatal("no error for a signature algorithm without a hash")
				}
				return
			}
			if err != nil || !bytes.Equal(got, tc.sum(der)) {
				t.Fatalf("got %x, %v", got, err)
			}
		})
	}
}
