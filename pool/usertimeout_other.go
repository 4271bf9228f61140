//go:build !linux

package pool

import (
	"syscall"
	"time"
)

// setUserTimeout does nothing: TCP_USER_TIMEOUT is Linux's.
func setUserTimeout(syscall.RawConn, time.Duration) error { return nil }

// userTimeout reports 0: TCP_USER_TIMEOUT is Linux's.
func userTimeout(syscall.RawConn) (time.Duration, error) { return 0, nil }

// setBuffers does nothing: tcp_socket_buffer is applied on Linux only.
func setBuffers(syscall.RawConn, int) error { return nil }

// setDeferAccept does nothing: TCP_DEFER_ACCEPT is Linux's.
func setDeferAccept(syscall.RawConn, time.Duration) error { return nil }
