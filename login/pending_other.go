//go:build !unix

package login

import "net"

// hasPendingInput cannot peek at a socket without blocking here, and
// reports false: the check against bytes sent after an SSLRequest
// (CVE-2021-23214) runs on Unix systems only.
func hasPendingInput(net.Conn) bool { return false }
