//go:build windows

package rawio

import (
	"io"
	"syscall"
)

// On Windows the calls go through package syscall, on the socket handle.

// Read reads with syscall.Read. It returns io.EOF at end of stream.
func Read(fd uintptr, b []byte) (int, error) {
	n, err := syscall.Read(syscall.Handle(fd), b)
	if err != nil {
		return 0, err
	}
	if n == 0 && len(b) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Write writes b with syscall.Write.
func Write(fd uintptr, b []byte) (int, error) {
	n, err := syscall.Write(syscall.Handle(fd), b)
	if err != nil {
		return 0, err
	}
	return n, nil
}
