package rawio

import (
	"bytes"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"testing"
	"time"
)

func tcpPair(t *testing.T) (a, b net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	accepted := make(chan net.Conn, 1)
	go func() {
		c, _ := ln.Accept()
		accepted <- c
	}()
	a, err = net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b = <-accepted
	if b == nil {
		t.Fatal("accept failed")
	}
	t.Cleanup(func() { a.Close(); b.Close() })
	return a, b
}

// A write larger than the socket buffers waits for the reader and arrives
// whole and in order; concurrent writes do not interleave; the reader sees
// io.EOF once the writer closes.
func TestWriteWaitsAndReadSeesEOF(t *testing.T) {
	a, b := tcpPair(t)
	w := NewWriter(RawConn(a))
	r := NewReader(RawConn(b))
	if w == nil || r == nil {
		t.Fatal("no raw socket behind a TCP connection")
	}
	chunks := [][]byte{bytes.Repeat([]byte{'x'}, 8<<20), bytes.Repeat([]byte{'y'}, 8<<20)}
	var wg sync.WaitGroup
	for _, c := range chunks {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if n, err := w.Write(c); err != nil || n != len(c) {
				t.Errorf("Write: %d, %v", n, err)
			}
		}()
	}
	go func() { wg.Wait(); a.Close() }()
	var got []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := r.Read(buf)
		got = append(got, buf[:n]...)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("Read: %v", err)
		}
	}
	if len(got) != 16<<20 {
		t.Fatalf("read %d bytes, want %d", len(got), 16<<20)
	}
	// Each write is whole: one run of x and one of y, in either order.
	first := got[0]
	for i, c := range got {
		want := first
		if i >= 8<<20 {
			want = 'x' + 'y' - first
		}
		if c != want {
			t.Fatalf("byte %d is %q: writes interleaved", i, c)
		}
	}
}

// Deadlines set on the connection bound raw reads and writes.
func TestDeadlines(t *testing.T) {
	a, b := tcpPair(t)
	r := NewReader(RawConn(b))
	_ = b.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := r.Read(make([]byte, 10)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Read past its deadline: %v", err)
	}
	w := NewWriter(RawConn(a))
	_ = a.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	n, err := w.Write(make([]byte, 64<<20)) // nobody reads: the buffers fill
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("Write past its deadline: %d, %v", n, err)
	}
	if n == 0 || n >= 64<<20 {
		t.Fatalf("Write reported %d bytes written", n)
	}
}

// A closed peer is an error, not a hang.
func TestWriteToClosedPeer(t *testing.T) {
	a, b := tcpPair(t)
	b.Close()
	w := NewWriter(RawConn(a))
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = w.Write(make([]byte, 64<<10))
		time.Sleep(time.Millisecond)
	}
	if err == nil {
		t.Fatal("writes to a closed peer kept succeeding")
	}
}

func TestNoRawConnForTLSLikeConns(t *testing.T) {
	a, _ := net.Pipe()
	defer a.Close()
	if RawConn(a) != nil {
		t.Fatal("a net.Pipe has no socket, yet RawConn returned one")
	}
	if NewWriter(nil) != nil || NewReader(nil) != nil {
		t.Fatal("nil RawConn must give nil Writer and Reader")
	}
}
