package proxy

import (
	"net"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"testing"
	"time"
)

// unix_socket_group gives the socket its group; unix_socket_mode its mode.
func TestUnixSocketGroup(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("changing a socket's group to one the test user is not in needs root")
	}
	dir := t.TempDir()
	startMux(t, "listen = []\nunix_socket_dir = \""+dir+"\"\nunix_socket_mode = \"0770\"\nunix_socket_group = \"daemon\"")
	fi, err := os.Stat(filepath.Join(dir, ".s.PGSQL.6432"))
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if st.Gid != 1 || fi.Mode().Perm() != 0o770 {
		t.Errorf("socket gid %d mode %v, want gid 1 (daemon) mode 0770", st.Gid, fi.Mode().Perm())
	}
}

// tcp_socket_buffer reaches the sockets of accepted clients (through the
// listener) and of servers (through the dialer).
func TestTCPSocketBuffer(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("tcp_socket_buffer is applied on Linux")
	}
	m := startMux(t, "tcp_socket_buffer = 49152")
	conn, err := net.Dial("tcp", net.JoinHostPort(m.host, itoa(m.port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	// The accepted socket is mux's; find it through the proxy's set of
	// accepted connections once it is there.
	var got int
	for i := 0; i < 100 && got == 0; i++ {
		m.p.keysMu.Lock()
		for c := range m.p.conns {
			got = rcvbuf(t, c)
		}
		m.p.keysMu.Unlock()
		if got == 0 {
			time.Sleep(20 * time.Millisecond)
		}
	}
	// Linux doubles the value asked for, for its bookkeeping.
	if got != 2*49152 {
		t.Errorf("accepted client socket: SO_RCVBUF %d, want %d", got, 2*49152)
	}
}

func rcvbuf(t *testing.T, c net.Conn) int {
	t.Helper()
	tc, ok := c.(*net.TCPConn)
	if !ok {
		return 0
	}
	rc, err := tc.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var n int
	_ = rc.Control(func(fd uintptr) { n, _ = syscall.GetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF) })
	return n
}
