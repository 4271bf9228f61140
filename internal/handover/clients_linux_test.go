//go:build linux

package handover

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// unixPair returns the two ends of a Unix stream connection.
func unixPair(t *testing.T) (a, b *net.UnixConn) {
	t.Helper()
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(t.TempDir(), "s"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan *net.UnixConn, 1)
	go func() {
		c, err := ln.AcceptUnix()
		if err != nil {
			t.Error(err)
		}
		accepted <- c
	}()
	a, err = net.DialUnix("unix", nil, ln.Addr().(*net.UnixAddr))
	if err != nil {
		t.Fatal(err)
	}
	b = <-accepted
	if b == nil {
		t.FailNow()
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// A predecessor whose end of the exchange fails (here: it closes with
// bytes of ours unread, and the read says ECONNRESET) ends ReceiveClients
// with an error, after the clients that came before it; the read's failure
// (n = -1) must not be taken for bytes.
func TestReceiveClientsReadFailure(t *testing.T) {
	oldEnd, newEnd := unixPair(t)
	s := &Successor{conn: oldEnd, WantsClients: true}
	p := &Predecessor{conn: newEnd}
	if _, err := newEnd.Write([]byte("left unread")); err != nil {
		t.Fatal(err)
	}
	if err := s.Heartbeat(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(50 * time.Millisecond)
	oldEnd.Close() // bytes unread: the peer's next read fails with ECONNRESET
	done := make(chan error, 1)
	go func() {
		n, err := p.ReceiveClients(func(f *os.File, _ ClientState) { f.Close() })
		if n != 0 {
			t.Errorf("%d clients taken, want 0", n)
		}
		done <- err
	}()
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "reset") {
			t.Fatalf("ReceiveClients ended with %v, want the connection reset", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("ReceiveClients did not end")
	}
}
