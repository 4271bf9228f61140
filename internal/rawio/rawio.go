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
	"net"
	"sync"
	"syscall"
)

// Writer writes to one connection's socket. It is safe for concurrent use.
type Writer struct {
	rc  syscall.RawConn
	mu  sync.Mutex // guards the fields below, which carry one Write's state
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool // w.step, bound once
}

// NewWriter returns a Writer for the socket behind rc (from RawConn), or
// nil if rc is nil.
func NewWriter(rc syscall.RawConn) *Writer {
	if rc == nil {
		return nil
	}
	w := &Writer{rc: rc}
	w.fn = w.step
	return w
}

// Write writes all of b, waiting for the socket to drain when it is full.
// The connection's write deadline applies.
func (w *Writer) Write(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	w.mu.Lock()
	w.b, w.n, w.err = b, 0, nil
	err := w.rc.Write(w.fn)
	n := w.n
	if err == nil {
		err = w.err
	}
	w.b, w.err = nil, nil
	w.mu.Unlock()
	return n, err
}

func (w *Writer) step(fd uintptr) bool {
	for w.n < len(w.b) {
		n, err := write(fd, w.b[w.n:])
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
type Reader struct {
	rc  syscall.RawConn
	b   []byte
	n   int
	err error
	fn  func(fd uintptr) bool // r.step, bound once
}

// NewReader returns a Reader for the socket behind rc (from RawConn), or
// nil if rc is nil.
func NewReader(rc syscall.RawConn) *Reader {
	if rc == nil {
		return nil
	}
	r := &Reader{rc: rc}
	r.fn = r.step
	return r
}

// Read reads into b, waiting until the socket has data. It returns io.EOF
// when the peer closed the connection. The connection's read deadline
// applies.
func (r *Reader) Read(b []byte) (int, error) {
	if len(b) == 0 {
		return 0, nil
	}
	r.b, r.n, r.err = b, 0, nil
	err := r.rc.Read(r.fn)
	n := r.n
	if err == nil {
		err = r.err
	}
	r.b, r.err = nil, nil
	return n, err
}

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
