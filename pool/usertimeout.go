package pool

import (
	"net"
	"syscall"
	"time"
)

// SetUserTimeout sets TCP_USER_TIMEOUT (tcp_user_timeout) on a TCP
// connection: how long sent data may stay unacknowledged before the kernel
// drops the connection. It does nothing for d <= 0 (the OS default stays),
// for other kinds of connection, and on systems other than Linux.
func SetUserTimeout(conn net.Conn, d time.Duration) error {
	tc, ok := conn.(*net.TCPConn)
	if !ok || d <= 0 {
		return nil
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return err
	}
	return setUserTimeout(rc, d)
}

// UserTimeout returns a TCP connection's TCP_USER_TIMEOUT (0: OS default,
// not TCP, or not Linux).
func UserTimeout(conn net.Conn) time.Duration {
	tc, ok := conn.(*net.TCPConn)
	if !ok {
		return 0
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		return 0
	}
	d, _ := userTimeout(rc)
	return d
}

// socketControl returns a Control function (net.Dialer's or
// net.ListenConfig's) that sets TCP_USER_TIMEOUT and the socket buffers on
// a TCP socket before it connects or listens, or nil when there is nothing
// to set. Buffers are set this early so that TCP's window scaling sees
// them; accepted sockets inherit a listener's.
func socketControl(d time.Duration, buffer int) func(network, address string, c syscall.RawConn) error {
	if d <= 0 && buffer <= 0 {
		return nil
	}
	return func(network, _ string, c syscall.RawConn) error {
		if network != "tcp" && network != "tcp4" && network != "tcp6" {
			return nil
		}
		if err := setBuffers(c, buffer); err != nil {
			return err
		}
		if d <= 0 {
			return nil
		}
		return setUserTimeout(c, d)
	}
}

// ListenControl returns a net.ListenConfig Control function that sets the
// socket buffers (tcp_socket_buffer) of a TCP listener, which its accepted
// sockets inherit, and TCP_DEFER_ACCEPT (tcp_defer_accept: accept a
// connection only once it has sent data, or after that long); nil when
// both are 0.
func ListenControl(buffer int, deferAccept time.Duration) func(network, address string, c syscall.RawConn) error {
	buffers := socketControl(0, buffer)
	if deferAccept <= 0 {
		return buffers
	}
	return func(network, address string, c syscall.RawConn) error {
		if buffers != nil {
			if err := buffers(network, address, c); err != nil {
				return err
			}
		}
		if network != "tcp" && network != "tcp4" && network != "tcp6" {
			return nil
		}
		return setDeferAccept(c, deferAccept)
	}
}
