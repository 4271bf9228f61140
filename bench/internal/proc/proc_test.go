package proc

import (
	"context"
	"net"
	"syscall"
	"testing"
)

// soReuseport is SO_REUSEPORT on Linux (x86, arm and most others), which
// package syscall does not define.
const soReuseport = 0xf

// TestTCPListeners checks that two sockets sharing a port with SO_REUSEPORT
// count as two listeners, as PgBouncer xN's processes must.
func TestTCPListeners(t *testing.T) {
	lc := net.ListenConfig{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, soReuseport, 1)
		})
		if err != nil {
			return err
		}
		return serr
	}}
	l1, err := lc.Listen(context.Background(), "tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l1.Close()
	port := l1.Addr().(*net.TCPAddr).Port
	if n, err := TCPListeners(port); err != nil || n != 1 {
		t.Fatalf("one listener: TCPListeners = %d, %v", n, err)
	}
	l2, err := lc.Listen(context.Background(), "tcp4", l1.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer l2.Close()
	if n, err := TCPListeners(port); err != nil || n != 2 {
		t.Fatalf("two listeners: TCPListeners = %d, %v", n, err)
	}
	// A connection to the port is not a listener.
	c, err := net.Dial("tcp4", l1.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if n, err := TCPListeners(port); err != nil || n != 2 {
		t.Fatalf("two listeners and a connection: TCPListeners = %d, %v", n, err)
	}
}
