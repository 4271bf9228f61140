package rawio

import (
	"io"
	"syscall"
	"unsafe"
)

// Read reads from a non-blocking descriptor with one raw read(2). It
// returns io.EOF at end of stream and the errno otherwise (EAGAIN when
// there is nothing to read, EINTR to be retried).
func Read(fd uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	if n == 0 {
		return 0, io.EOF
	}
	return int(n), nil
}

// Write writes b to a non-blocking descriptor with one raw write(2), which
// may write less than all of b. It returns the errno on failure (EAGAIN
// when the socket is full, EINTR to be retried).
func Write(fd uintptr, b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&b[0])), uintptr(len(b)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
