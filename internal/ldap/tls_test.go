package ldap

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"
	"time"

	"github.com/muxpg/mux/internal/slapdtest"
	"github.com/muxpg/mux/internal/testpki"
)

// ldaps and StartTLS against slapd, verifying its certificate.
func TestAuthenticateTLS(t *testing.T) {
	dir := t.TempDir()
	ca := testpki.NewCA(t, "ldap test CA")
	cert, key := ca.WriteLeaf(t, dir, "slapd", "127.0.0.1", "127.0.0.1")
	srv := slapdtest.StartTLS(t, &slapdtest.TLS{CertFile: cert, KeyFile: key}, users...)
	pool := x509.NewCertPool()
	pool.AddCert(ca.Cert)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	suffix := ` ldapprefix="uid=" ldapsuffix=",` + slapdtest.PeopleDN + `"`
	ldaps := mustParse(t, `ldapscheme=ldaps ldapserver=127.0.0.1 ldapport=%d`+suffix, srv.TLSPort)
	startTLS := mustParse(t, `ldaptls=1 ldapserver=127.0.0.1 ldapport=%d`+suffix, srv.Port)
	for name, o := range map[string]*Options{"ldaps": ldaps, "StartTLS": startTLS} {
		o.RootCAs = pool
		if err := Authenticate(ctx, o, "alice", "alicepw"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		if err := Authenticate(ctx, o, "alice", "wrong"); !errors.Is(err, ErrRejected) {
			t.Errorf("%s, wrong password: %v", name, err)
		}
		// An unknown CA is refused: the password is never sent.
		o.RootCAs = x509.NewCertPool()
		if err := Authenticate(ctx, o, "alice", "alicepw"); err == nil || errors.Is(err, ErrRejected) {
			t.Errorf("%s with an untrusted certificate: %v, want a TLS error", name, err)
		}
	}
}
