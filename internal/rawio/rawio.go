// Package rawio reads and writes sockets with raw system calls.
//
// Go's syscall.Read and syscall.Write tell the scheduler that the calling
// thread may block, so its P is marked "in system call". A read or write on
// a non-blocking socket never blocks, but on a loaded machine the kernel
// often runs the process it just woke before returning to the caller; the
// call then looks long, sysmon hands the P to another thread and keeps
// itself on its 20 µs tick, and every hand-off is one more thread woken.
// Measured under pgbench -S with 50 clients, that machinery cost mux about
// a tenth of its CPU. A raw system call keeps the P: other goroutines are
// still stolen by the other Ps if the thread is descheduled.
//
// Waiting for a socket to become readable or writable still goes through
// Go's poller (syscall.RawConn), so deadlines keep working.
package rawio

import (
	"io"
	"net"
	"sync"
	"syscall"
)

// call carries one Read or Write through a syscall.RawConn callback,
// bound once: a closure made per call would allocate.
type call struct {
	rc  syscall.RawConn
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool // the owner's step
}

// run moves b through the callback: written if write, else read into.
func (c *call) run(b []byte, write bool) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	c.b, c.n, c.err = b, 0, nil
	var err error
	if write {
		err = c.rc.Write(c.fn)
	} else {
		err = c.rc.Read(c.fn)
	}
	n := c.n
	if err == nil {
		err = c.err
	}
	c.b, c.err = nil, nil
	return n, err
}

// Writer writes to one connection's socket. It is safe for concurrent use.
type Writer struct {
	mu sync.Mutex // one Write at a time: call holds its state
	call
}

// NewWriter returns a Writer for the socket behind rc (from RawConn), or
// nil if rc is nil.
func NewWriter(rc syscall.RawConn) *Writer {
	if rc == nil {
		return nil
	}
	w := &Writer{}
	w.rc, w.fn = rc, w.step
	return w
}

// Write writes all of b, waiting for the socket to drain when it is full.
// The connection's write deadline applies.
func (w *Writer) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.run(b, true)
}

func (w *Writer) step(fd uintptr) bool {
	for w.n < len(w.b) {
		n, err := Write(fd, w.b[w.n:])
		switch err {
		case nil:
			w.n += n
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false // wait until writable
		default:
			w.err = &net.OpError{Op: "write", Err: err}
			return true
		}
	}
	return true
}

// Reader reads from one connection's socket. It is not safe for concurrent
// use: a connection has one reading goroutine.
type Reader struct{ call }

// NewReader returns a Reader for the socket behind rc (from RawConn), or
// nil if rc is nil.
func NewReader(rc syscall.RawConn) *Reader {
	if rc == nil {
		return nil
	}
	r := &Reader{}
	r.rc, r.fn = rc, r.step
	return r
}

// Read reads into b, waiting until the socket has data. It returns io.EOF
// when the peer closed the connection. The connection's read deadline
// applies.
func (r *Reader) Read(b []byte) (int, error) { return r.run(b, false) }

func (r *Reader) step(fd uintptr) bool {
	for {
		n, err := Read(fd, r.b)
		switch err {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false // wait until readable
		}
		r.n, r.err = n, err
		return true
	}
}

// ReadWriter returns what to read conn with and write it with: raw ones
// for a socket of its own, conn itself for a TLS connection.
func ReadWriter(conn net.Conn) (io.Reader, io.Writer) {
	rc := RawConn(conn)
	if rc == nil {
		return conn, conn
	}
	return NewReader(rc), NewWriter(rc)
}

// RawConn returns conn's socket for raw reads and writes, or nil if conn
// has no socket of its own (a TLS connection).
func RawConn(conn net.Conn) syscall.RawConn {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// FD returns the descriptor of a connection's or listener's socket (under
// TLS, of the connection it runs on), or -1 if it has none; for SHOW FDS.
func FD(sock any) int {
	if nc, ok := sock.(interface{ NetConn() net.Conn }); ok {
		sock = nc.NetConn()
	}
	sc, ok := sock.(syscall.Conn)
	if !ok {
		return -1
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1
	}
	fd := -1
	_ = rc.Control(func(f uintptr) { fd = int(f) })
	return fd
}

// WriteAvailable writes as much of b as the non-blocking descriptor takes
// now: n < len(b) with a nil error means the socket is full (EAGAIN).
func WriteAvailable(fd uintptr, b []byte) (n int, err error) {
	for n < len(b) {
		m, e := Write(fd, b[n:])
		switch e {
		case nil:
			n += m
		case syscall.EINTR:
		case syscall.EAGAIN:
			return n, nil
		default:
			return n, e
		}
	}
	return n, nil
}
