//go:build !unix

package proxy

import "syscall"

// dupSocket fails: clients are handed over only where descriptors can be
// passed (Unix).
func dupSocket(syscall.RawConn) int { return -1 }

func closeFD(int) {}
