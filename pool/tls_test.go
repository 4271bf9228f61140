package pool

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/muxpg/mux/internal/testpki"
	"github.com/muxpg/mux/internal/wire"
)

// fakeTLSServer accepts one connection, checks for an SSLRequest, answers
// answer and, with 'S', runs a TLS handshake with cert and echoes one
// line. It returns the address.
func fakeTLSServer(t *testing.T, answer byte, cert tls.Certificate) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	t.Cleanup(func() { ln.Close(); <-done })
	go func() {
		defer close(done)
		conn, err := ln.Accept()
		if err != nil {
			return
		}
		defer conn.Close()
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		var req [8]byte
		if _, err := io.ReadFull(conn, req[:]); err != nil ||
			binary.BigEndian.Uint32(req[:4]) != 8 || binary.BigEndian.Uint32(req[4:]) != wire.SSLRequestCode {
			t.Errorf("no SSLRequest: %x %v", req, err)
			return
		}
		if _, err := conn.Write([]byte{answer}); err != nil || answer != 'S' {
			return
		}
		tc := tls.Server(conn, &tls.Config{Certificates: []tls.Certificate{cert}})
		var line [5]byte
		if _, err := io.ReadFull(tc, line[:]); err == nil {
			_, _ = tc.Write(line[:])
		}
	}()
	return ln.Addr().String()
}

func TestStartTLS(t *testing.T) {
	ca := testpki.NewCA(t, "ca")
	other := testpki.NewCA(t, "other")
	caPool, otherPool := x509.NewCertPool(), x509.NewCertPool()
	caPool.AddCert(ca.Cert)
	otherPool.AddCert(other.Cert)
	certPEM, keyPEM := ca.Issue(t, "db", "127.0.0.1")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	cliCert, err := tls.X509KeyPair(ca.Issue(t, "mux"))
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct {
		name, mode string
		ca         *x509.CertPool
		host       string // name dialled; default 127.0.0.1
		answer     byte
		wantTLS    bool
		wantErr    string
	}{
		{name: "prefer, refused", mode: "prefer", answer: 'N'},
		{name: "prefer", mode: "prefer", answer: 'S', wantTLS: true},
		{name: "require, refused", mode: "require", answer: 'N', wantErr: "server does not support TLS (server_tls_sslmode = require)"},
		{name: "require, any certificate", mode: "require", ca: otherPool, answer: 'S', wantTLS: true},
		{name: "verify-ca", mode: "verify-ca", ca: caPool, host: "db.invalid", answer: 'S', wantTLS: true},
		{name: "verify-ca, wrong CA", mode: "verify-ca", ca: otherPool, answer: 'S', wantErr: "unknown authority"},
		{name: "verify-full", mode: "verify-full", ca: caPool, answer: 'S', wantTLS: true},
		{name: "verify-full, wrong name", mode: "verify-full", ca: caPool, host: "db.invalid", answer: 'S', wantErr: "db.invalid"},
		{name: "verify-full, wrong CA", mode: "verify-full", ca: otherPool, answer: 'S', wantErr: "unknown authority"},
		{name: "verify-full, refused", mode: "verify-full", ca: caPool, answer: 'N', wantErr: "does not support TLS"},
		{name: "garbage answer", mode: "prefer", answer: 'E', wantErr: "unexpected answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := NewTLS(tc.mode, "tlsv1.2", tc.ca, &cliCert)
			if err != nil {
				t.Fatal(err)
			}
			addr := fakeTLSServer(t, tc.answer, cert)
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
			host := tc.host
			if host == "" {
				host = "127.0.0.1"
			}
			got, err := cfg.StartTLS(conn, "tcp", host)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %v, want an error with %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if _, isTLS := got.(*tls.Conn); isTLS != tc.wantTLS {
				t.Fatalf("TLS = %v, want %v", isTLS, tc.wantTLS)
			}
			if tc.wantTLS {
				if _, err := got.Write([]byte("hello")); err != nil {
					t.Fatal(err)
				}
				var echo [5]byte
				if _, err := io.ReadFull(got, echo[:]); err != nil || !bytes.Equal(echo[:], []byte("hello")) {
					t.Fatalf("echo %q, %v", echo, err)
				}
			}
		})
	}
}

func TestNewTLS(t *testing.T) {
	if cfg, err := NewTLS("disable", "", nil, nil); cfg != nil || err != nil {
		t.Fatalf("disable: %v, %v", cfg, err)
	}
	if _, err := NewTLS("verify-full", "", nil, nil); err == nil {
		t.Fatal("verify-full without a CA accepted")
	}
	if _, err := NewTLS("verify-ca", "", nil, nil); err == nil || !strings.Contains(err.Error(), "server_tls_ca_file") {
		t.Fatalf("verify-ca without a CA: %v", err)
	}
	var nilTLS *TLS
	c1, c2 := net.Pipe()
	defer c1.Close()
	defer c2.Close()
	if got, err := nilTLS.StartTLS(c1, "tcp", "x"); got != c1 || err != nil {
		t.Fatal("nil TLS changed the connection")
	}
	cfg, _ := NewTLS("require", "tlsv1.3", nil, nil)
	if got, err := cfg.StartTLS(c1, "unix", ""); got != c1 || err != nil {
		t.Fatal("TLS attempted on a Unix socket")
	}
	if cfg.config.MinVersion != tls.VersionTLS13 {
		t.Fatal("min version not applied")
	}
}
