package pool

import (
	"context"
	"net"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// tcp_user_timeout reaches server sockets through the dialer, and
// SetUserTimeout sets it on accepted ones.
func TestUserTimeoutOnDialAndAccept(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP_USER_TIMEOUT is Linux's")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	d := net.Dialer{Control: socketControl(2500*time.Millisecond, 24576)}
	conn, err := d.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := UserTimeout(conn); got != 2500*time.Millisecond {
		t.Errorf("dialed: TCP_USER_TIMEOUT %v, want 2.5s", got)
	}
	acc, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer acc.Close()
	if got := UserTimeout(acc); got != 0 {
		t.Errorf("accepted before SetUserTimeout: %v, want 0", got)
	}
	if err := SetUserTimeout(acc, 3*time.Second); err != nil {
		t.Fatal(err)
	}
	if got := UserTimeout(acc); got != 3*time.Second {
		t.Errorf("accepted: TCP_USER_TIMEOUT %v, want 3s", got)
	}
	if socketControl(0, 0) != nil {
		t.Error("a zero tcp_user_timeout and tcp_socket_buffer install a Control function")
	}
	var sndbuf int
	rc, _ := conn.(*net.TCPConn).SyscallConn()
	_ = rc.Control(func(fd uintptr) { sndbuf, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF) })
	if sndbuf != 2*24576 { // Linux doubles what it is asked for
		t.Errorf("dialed: SO_SNDBUF %d, want %d", sndbuf, 2*24576)
	}
}

// tcp_defer_accept reaches the listener (the kernel rounds the seconds up
// to whole SYN-ACK retransmissions, so the value read back may be larger).
func TestDeferAcceptOnListener(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("TCP_DEFER_ACCEPT is Linux's")
	}
	for _, d := range []time.Duration{0, 10 * time.Second} {
		lc := net.ListenConfig{Control: ListenControl(0, d)}
		ln, err := lc.Listen(context.Background(), "tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		rc, _ := ln.(*net.TCPListener).SyscallConn()
		got, err := deferAccept(rc)
		ln.Close()
		if err != nil || (d == 0) != (got == 0) || got < int(d/time.Second) {
			t.Errorf("tcp_defer_accept %v: TCP_DEFER_ACCEPT %d, %v", d, got, err)
		}
	}
	if ListenControl(0, 0) != nil {
		t.Error("ListenControl(0, 0) installs a Control function")
	}
}
