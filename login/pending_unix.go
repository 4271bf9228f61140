//go:build unix

package login

import (
	"net"
	"syscall"

	"github.com/muxpg/mux/internal/rawio"
)

// hasPendingInput reports whether the client already sent bytes we have not
// read: after an SSLRequest or GSSENCRequest that is a protocol violation
// (and with TLS, the buffer-stuffing attack of CVE-2021-23214). A *tls.Conn
// has no raw socket to peek at and reports false; it is never asked, since a
// second SSLRequest or a GSSENCRequest inside TLS is refused before.
func hasPendingInput(conn net.Conn) bool {
	raw := rawio.RawConn(conn)
	if raw == nil {
		return false
	}
	var one [1]byte
	pending := false
	_ = raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		pending = err == nil && n > 0
		return true
	})
	return pending
}
