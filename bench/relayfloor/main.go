//go:build linux

// Command relayfloor measures what relaying bytes costs under two I/O
// designs, with no protocol work at all: the floor under any proxy built
// on that design. Each client connection gets its own backend connection
// (as in session pooling) and bytes are copied both ways.
//
//	-mode goroutine  two goroutines per client, io.Copy each way (Go's poller)
//	-mode epoll      -loops event loops, each one goroutine waiting in
//	                 epoll_wait on its own set and copying with raw read(2) /
//	                 write(2), as PgBouncer does in C
//	-mode netpoll    the same loops, but a loop never blocks in epoll_wait:
//	                 it polls its set without waiting, and waits for the set
//	                 itself to turn readable in Go's poller, so the thread
//	                 keeps its P (no system-call hand-off)
//
// Point pgbench at it and compare its CPU per transaction with mux's and
// PgBouncer's:
//
//	go build -o /tmp/relayfloor ./bench/relayfloor
//	/tmp/relayfloor -mode epoll -listen 127.0.0.1:7500 -backend 127.0.0.1:5432 &
//	pgbench -h 127.0.0.1 -p 7500 -S -c 50 -j 2 -T 10 ...
//	# CPU: utime+stime of the relayfloor process (/proc/PID/stat) over the run
//
// docs/PERFORMANCE.md records what it measured. Authentication passes through
// untouched. A write that would block waits in poll(2) on that socket, which
// stalls the loop: fine for request/response benchmarks, not for production.
package main

import (
	"flag"
	"io"
	"log"
	"net"
	"os"
	"sync"
	"syscall"
	"unsafe"

	"github.com/muxpg/mux/internal/rawio"
)

func main() {
	mode := flag.String("mode", "epoll", "goroutine | epoll | netpoll")
	listen := flag.String("listen", "127.0.0.1:7500", "address to accept clients on")
	backend := flag.String("backend", "127.0.0.1:5432", "Postgres address")
	loops := flag.Int("loops", 1, "event loops (-mode epoll)")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	var serve func(client, server *net.TCPConn)
	switch *mode {
	case "goroutine":
		serve = copyBothWays
	case "epoll", "netpoll":
		ls := make([]*loop, max(*loops, 1))
		for i := range ls {
			ls[i] = newLoop()
			if *mode == "epoll" {
				go ls[i].run()
			} else {
				go ls[i].runNetpoll()
			}
		}
		next := 0
		serve = func(client, server *net.TCPConn) {
			ls[next%len(ls)].add(client, server)
			next++
		}
	default:
		log.Fatalf("unknown -mode %q", *mode)
	}
	for {
		c, err := ln.Accept()
		if err != nil {
			log.Fatal(err)
		}
		s, err := net.Dial("tcp", *backend)
		if err != nil {
			log.Print(err)
			c.Close()
			continue
		}
		serve(c.(*net.TCPConn), s.(*net.TCPConn))
	}
}

func copyBothWays(client, server *net.TCPConn) {
	go func() {
		_, _ = io.Copy(server, client)
		server.Close()
	}()
	go func() {
		_, _ = io.Copy(client, server)
		client.Close()
	}()
}

// loop relays between pairs of sockets it owns outright (taken out of Go's
// poller): level-triggered epoll, one read and one write per event.
type loop struct {
	ep   int
	mu   sync.Mutex    // guards peer: the accept goroutine adds pairs
	peer map[int32]int // each socket's partner
	buf  []byte
}

func newLoop() *loop {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		log.Fatal(err)
	}
	return &loop{ep: ep, peer: map[int32]int{}, buf: make([]byte, 64<<10)}
}

// add takes the pair's descriptors out of Go's hands (dup via File) and
// watches both.
func (l *loop) add(client, server *net.TCPConn) {
	fds := [2]int{dupFD(client), dupFD(server)}
	if fds[0] < 0 || fds[1] < 0 {
		closeFDs(fds[0], fds[1])
		return
	}
	l.mu.Lock()
	l.peer[int32(fds[0])], l.peer[int32(fds[1])] = fds[1], fds[0]
	l.mu.Unlock()
	for _, fd := range fds {
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(fd)}
		if err := syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
			log.Print(err)
		}
	}
}

func dupFD(c *net.TCPConn) int {
	f, err := c.File() // a blocking duplicate
	c.Close()
	if err != nil {
		return -1
	}
	fd, err := syscall.Dup(int(f.Fd()))
	f.Close()
	if err != nil {
		return -1
	}
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return -1
	}
	return fd
}

func closeFDs(fds ...int) {
	for _, fd := range fds {
		if fd >= 0 {
			syscall.Close(fd)
		}
	}
}

func (l *loop) run() {
	evs := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(l.ep, evs, -1)
		if err != nil {
			if err == syscall.EINTR {
				continue
			}
			log.Fatal(err)
		}
		for _, ev := range evs[:n] {
			l.relay(int(ev.Fd))
		}
	}
}

// runNetpoll is run without blocking system calls: the set is polled with
// a zero timeout, and when it has nothing ready the goroutine waits in Go's
// poller for the set's own descriptor to turn readable. Polling inside the
// RawConn callback, after the poller's readiness note was reset, loses no
// wake-up.
func (l *loop) runNetpoll() {
	if err := syscall.SetNonblock(l.ep, true); err != nil {
		log.Fatal(err)
	}
	rc, err := os.NewFile(uintptr(l.ep), "epoll").SyscallConn()
	if err != nil {
		log.Fatal(err)
	}
	evs := make([]syscall.EpollEvent, 256)
	step := func(fd uintptr) bool {
		n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)), 0, 0, 0)
		for e == syscall.EINTR {
			n, _, e = syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&evs[0])), uintptr(len(evs)), 0, 0, 0)
		}
		if e != 0 {
			log.Fatal(e)
		}
		if n == 0 {
			return false // nothing ready: wait for the set
		}
		for _, ev := range evs[:n] {
			l.relay(int(ev.Fd))
		}
		return true
	}
	for {
		if err := rc.Read(step); err != nil {
			log.Fatal(err)
		}
	}
}

func (l *loop) relay(fd int) {
	l.mu.Lock()
	peer, ok := l.peer[int32(fd)]
	l.mu.Unlock()
	if !ok {
		return // closed earlier in this batch
	}
	n, err := rawio.Read(uintptr(fd), l.buf)
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return
	}
	if err != nil || !writeAll(peer, l.buf[:n]) {
		l.mu.Lock()
		delete(l.peer, int32(fd))
		delete(l.peer, int32(peer))
		l.mu.Unlock()
		closeFDs(fd, peer) // closing removes them from the epoll set
	}
}

func writeAll(fd int, b []byte) bool {
	for len(b) > 0 {
		n, err := rawio.Write(uintptr(fd), b)
		switch err {
		case nil:
			b = b[n:]
		case syscall.EINTR:
		case syscall.EAGAIN:
			pfd := [1]struct {
				fd              int32
				events, revents int16
			}{{fd: int32(fd), events: 0x4}} // POLLOUT
			_, _, _ = syscall.Syscall(syscall.SYS_POLL, uintptr(unsafe.Pointer(&pfd[0])), 1, ^uintptr(0))
		default:
			return false
		}
	}
	return true
}
