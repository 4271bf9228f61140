//go:build unix

package proxy

import "syscall"

// dupSocket duplicates the socket raw controls (close-on-exec), or returns
// -1.
func dupSocket(raw syscall.RawConn) int {
	fd := -1
	if err := raw.Control(func(s uintptr) {
		if n, err := syscall.Dup(int(s)); err == nil {
			fd = n
		}
	}); err != nil {
		if fd >= 0 {
			syscall.Close(fd)
		}
		return -1
	}
	if fd >= 0 {
		syscall.CloseOnExec(fd)
	}
	return fd
}

func closeFD(fd int) { syscall.Close(fd) }
