package pool

import (
	"syscall"
	"time"
)

// tcpUserTimeout is Linux's TCP_USER_TIMEOUT socket option
// (include/uapi/linux/tcp.h); the syscall package does not name it.
const tcpUserTimeout = 0x12

// setUserTimeout sets TCP_USER_TIMEOUT, which the kernel takes in ms.
func setUserTimeout(rc syscall.RawConn, d time.Duration) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout, int(d.Milliseconds()))
	})
	if err != nil {
		return err
	}
	return serr
}

// userTimeout reads TCP_USER_TIMEOUT back, for tests.
func userTimeout(rc syscall.RawConn) (time.Duration, error) {
	var ms int
	var serr error
	err := rc.Control(func(fd uintptr) {
		ms, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, tcpUserTimeout)
	})
	if err != nil {
		return 0, err
	}
	return time.Duration(ms) * time.Millisecond, serr
}

// setBuffers sets SO_SNDBUF and SO_RCVBUF to n bytes; n <= 0 leaves them.
func setBuffers(rc syscall.RawConn, n int) error {
	if n <= 0 {
		return nil
	}
	var serr error
	err := rc.Control(func(fd uintptr) {
		if serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, n); serr == nil {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, n)
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// setDeferAccept sets TCP_DEFER_ACCEPT, which the kernel takes in seconds.
func setDeferAccept(rc syscall.RawConn, d time.Duration) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT, int((d+time.Second-1)/time.Second))
	})
	if err != nil {
		return err
	}
	return serr
}

// deferAccept reads TCP_DEFER_ACCEPT back, for tests.
func deferAccept(rc syscall.RawConn) (int, error) {
	var n int
	var serr error
	err := rc.Control(func(fd uintptr) {
		n, serr = syscall.GetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_DEFER_ACCEPT)
	})
	if err != nil {
		return 0, err
	}
	return n, serr
}
