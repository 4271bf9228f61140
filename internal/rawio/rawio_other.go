//go:build !linux && !windows

package rawio

import (
	"io"
	"syscall"
)

// Elsewhere than Linux the calls go through package syscall.

// Read reads from a non-blocking descriptor with syscall.Read. It returns
// io.EOF at end of stream and the errno otherwise.
func Read(fd uintptr, b []byte) (int, error) {
	n, err := syscall.Read(int(fd), b)
	if err != nil {
		return 0, err
	}
	if n == 0 && len(b) > 0 {
		return 0, io.EOF
	}
	return n, nil
}

// Write writes b to a non-blocking descriptor with syscall.Write. It
// returns the errno on failure.
func Write(fd uintptr, b []byte) (int, error) {
	n, err := syscall.Write(int(fd), b)
	if err != nil {
		return 0, err
	}
	return n, nil
}
