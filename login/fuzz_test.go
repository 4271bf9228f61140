package login

import (
	"bytes"
	"crypto/tls"
	"encoding/binary"
	"net"
	"testing"
	"time"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/testpki"
	"github.com/muxpg/mux/internal/wire"
)

// FuzzStartup feeds arbitrary startup packet bodies (after the length) to
// the parser: it must never panic, and what it accepts must be sane.
func FuzzStartup(f *testing.F) {
	f.Add(wire.StartupPacket(3<<16, "user", "u", "database", "d", "options", "-c a=b --c-d=e")[4:])
	f.Add(wire.StartupPacket(3<<16|2, "user", "u", "_pq_.x", "1")[4:])
	f.Add(wire.StartupPacket(3<<16, "user", "u", "options", `-c a=b\ c -cx=y`)[4:])
	f.Add([]byte{0, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) < 4 || len(body) > wire.MaxStartupPacketLen {
			return
		}
		code := binary.BigEndian.Uint32(body)
		st, err := parseStartup(code&0xffff, body[4:])
		if err != nil {
			if _, ok := err.(*wire.Error); !ok {
				t.Fatalf("error %T is not a wire.Error", err)
			}
			return
		}
		if st.User == "" || st.Database == "" {
			t.Fatalf("accepted startup without user or database: %+v", st)
		}
		for _, s := range st.Settings {
			if s.Name == "" {
				t.Fatal("empty setting name accepted")
			}
		}
	})
}

// FuzzReadStartup feeds arbitrary bytes to the whole pre-authentication
// state machine, as a client's first bytes: the ClientHello check of
// direct TLS, SSLRequest, GSSENCRequest, CancelRequest and the
// StartupMessage, with client TLS off and on. It must never panic, and a
// direct TLS hello must never get a plain-text answer.
func FuzzReadStartup(f *testing.F) {
	on := fuzzClientTLS(f)
	off := &ClientTLS{mode: "disable"}
	startup := wire.StartupPacket(3<<16|2, "user", "u", "_pq_.x", "1")
	f.Add(startup)
	f.Add(append(sslRequestPacket(), startup...))
	f.Add(append(binary.BigEndian.AppendUint32([]byte{0, 0, 0, 8}, wire.GSSENCRequestCode), startup...))
	f.Add(append(binary.BigEndian.AppendUint32([]byte{0, 0, 0, 16}, wire.CancelRequestCode), 0, 0, 0, 1, 1, 2, 3, 4))
	f.Add([]byte{0x16, 0x03, 0x01, 0x00, 0x05, 0x01, 0x00, 0x00, 0x01, 0x00})
	f.Add([]byte{0x16, 0, 0, 8})
	f.Fuzz(func(t *testing.T, in []byte) {
		for _, tl := range []*ClientTLS{off, on} {
			fc := &fuzzConn{r: bytes.NewReader(in)}
			st, key, err := ReadStartup(&Conn{Conn: fc}, tl)
			switch {
			case err != nil:
				if len(in) > 0 && in[0] == tlsHandshakeRecord && tl == off {
					if _, ok := err.(*wire.Error); ok || fc.w.Len() > 0 {
						t.Fatalf("direct TLS hello without client TLS: %v, %d bytes written", err, fc.w.Len())
					}
				}
			case key != nil:
				if st != nil || len(key.Secret) == 0 {
					t.Fatalf("cancel request read as %+v, %+v", st, key)
				}
			case st == nil || st.User == "" || st.Database == "":
				t.Fatalf("accepted startup without user or database: %+v", st)
			}
		}
	})
}

func sslRequestPacket() []byte {
	return binary.BigEndian.AppendUint32([]byte{0, 0, 0, 8}, wire.SSLRequestCode)
}

// fuzzClientTLS is client TLS in mode prefer with a throwaway certificate.
func fuzzClientTLS(f *testing.F) *ClientTLS {
	ca := testpki.NewCA(f, "fuzz CA")
	certPEM, keyPEM := ca.Issue(f, "mux", "127.0.0.1")
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		f.Fatal(err)
	}
	t, err := NewClientTLS(&config.Config{ClientTLSSSLMode: "prefer"}, config.TLSFiles{Cert: &cert})
	if err != nil {
		f.Fatal(err)
	}
	return t
}

// fuzzConn is a client connection whose bytes come from a reader; what is
// written to it is kept.
type fuzzConn struct {
	r *bytes.Reader
	w bytes.Buffer
}

func (c *fuzzConn) Read(b []byte) (int, error)  { return c.r.Read(b) }
func (c *fuzzConn) Write(b []byte) (int, error) { return c.w.Write(b) }
func (c *fuzzConn) Close() error                { return nil }
func (c *fuzzConn) LocalAddr() net.Addr         { return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 6432} }
func (c *fuzzConn) RemoteAddr() net.Addr {
	return &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 50000}
}
func (c *fuzzConn) SetDeadline(time.Time) error      { return nil }
func (c *fuzzConn) SetReadDeadline(time.Time) error  { return nil }
func (c *fuzzConn) SetWriteDeadline(time.Time) error { return nil }
