//go:build linux

package proxy

import (
	"sync"
	"syscall"

	"go.uber.org/zap"
)

// poller waits for parked clients' sockets with one epoll set and one
// goroutine for all of them. It starts with the first parked client.
type poller struct {
	log *zap.Logger

	mu      sync.Mutex
	epfd    int                    // the epoll set, once started
	stopW   int                    // write end of the pipe that stops loop
	stopR   int                    // its read end, in the set under id 0
	clients map[uint64]*clientConn // parked clients by id (ids start at 1)
	started bool
	failed  bool // epoll could not be set up, or stop ran: never park
	done    chan struct{}
}

func (pl *poller) enabled() bool { return true }

// startLocked sets up the epoll set and its goroutine. pl.mu held.
func (pl *poller) startLocked() bool {
	if pl.started || pl.failed {
		return pl.started && !pl.failed
	}
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		pl.log.Warn("idle clients will not be parked: epoll_create1 failed", zap.Error(err))
		pl.failed = true
		return false
	}
	var fds [2]int
	if err := syscall.Pipe2(fds[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		pl.log.Warn("idle clients will not be parked: pipe2 failed", zap.Error(err))
		pl.failed = true
		return false
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, fds[0], &ev); err != nil {
		syscall.Close(epfd)
		syscall.Close(fds[0])
		syscall.Close(fds[1])
		pl.log.Warn("idle clients will not be parked: epoll_ctl failed", zap.Error(err))
		pl.failed = true
		return false
	}
	pl.epfd, pl.stopR, pl.stopW = epfd, fds[0], fds[1]
	pl.clients = make(map[uint64]*clientConn)
	pl.done = make(chan struct{})
	pl.started = true
	go pl.loop(epfd)
	return true
}

// park puts c's socket in the epoll set and hands the session over to the
// poller. It returns false if c keeps running on its goroutine.
func (pl *poller) park(c *clientConn) bool {
	pl.mu.Lock()
	if !pl.startLocked() {
		pl.mu.Unlock()
		return false
	}
	pl.clients[c.id] = c
	epfd := pl.epfd
	pl.mu.Unlock()

	// The socket stays in the set, disarmed, after its first event
	// (EPOLLONESHOT): parking again re-arms it. Closing the socket takes it
	// out of the set.
	op := syscall.EPOLL_CTL_ADD
	if c.park.inEpoll {
		op = syscall.EPOLL_CTL_MOD
	}
	// Set before the state: whoever resumes c reads it after its CAS.
	c.park.inEpoll = true
	c.park.state.Store(parked)
	var err error
	cerr := c.in.raw.Control(func(fd uintptr) {
		ev := syscall.EpollEvent{
			Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
			Fd:     int32(uint32(c.id)),
			Pad:    int32(uint32(c.id >> 32)),
		}
		// inEpoll is a hint: the other operation is tried when it is wrong.
		err = syscall.EpollCtl(epfd, op, int(fd), &ev)
		switch {
		case err == syscall.ENOENT && op == syscall.EPOLL_CTL_MOD:
			err = syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		case err == syscall.EEXIST && op == syscall.EPOLL_CTL_ADD:
			err = syscall.EpollCtl(epfd, syscall.EPOLL_CTL_MOD, int(fd), &ev)
		}
	})
	if cerr == nil && err == nil {
		return true
	}
	if !c.park.state.CompareAndSwap(parked, running) {
		return true // already taken up by another goroutine
	}
	pl.mu.Lock()
	delete(pl.clients, c.id)
	pl.mu.Unlock()
	if err != nil {
		pl.log.Warn("cannot park client", zap.Uint64("client_id", c.id), zap.Error(err))
	}
	return false
}

// forget drops a resumed client from the parked ones. Its socket stays in
// the epoll set, disarmed until it parks again.
func (pl *poller) forget(c *clientConn) {
	pl.mu.Lock()
	delete(pl.clients, c.id)
	pl.mu.Unlock()
}

// unwatch takes a client that leaves for a successor process (handover.go)
// out of the epoll set: the socket lives on there, and so would its entry.
func (pl *poller) unwatch(c *clientConn) {
	pl.mu.Lock()
	epfd := pl.epfd
	started := pl.started
	pl.mu.Unlock()
	if !started || !c.park.inEpoll {
		return
	}
	_ = c.in.raw.Control(func(fd uintptr) {
		_ = syscall.EpollCtl(epfd, syscall.EPOLL_CTL_DEL, int(fd), nil)
	})
	c.park.inEpoll = false
}

// loop hands readable (or hung-up) parked sockets back to a goroutine.
func (pl *poller) loop(epfd int) {
	defer close(pl.done)
	events := make([]syscall.EpollEvent, 256)
	for {
		n, err := syscall.EpollWait(epfd, events, -1)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			pl.log.Error("epoll_wait failed: waking every parked client", zap.Error(err))
			pl.wakeAll()
			return
		}
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if id == 0 {
				return // stop
			}
			pl.mu.Lock()
			c := pl.clients[id]
			pl.mu.Unlock()
			if c != nil {
				c.wake()
			}
		}
	}
}

// wakeAll resumes every parked client and parks no more.
func (pl *poller) wakeAll() {
	pl.mu.Lock()
	pl.failed = true
	clients := make([]*clientConn, 0, len(pl.clients))
	for _, c := range pl.clients {
		clients = append(clients, c)
	}
	pl.mu.Unlock()
	for _, c := range clients {
		c.wake()
	}
}

// stop ends the poller's goroutine and closes its descriptors. Parked
// clients, if any are left, are resumed first.
func (pl *poller) stop() {
	pl.mu.Lock()
	started := pl.started
	pl.started = false
	pl.failed = true
	pl.mu.Unlock()
	if !started {
		return
	}
	_, _ = syscall.Write(pl.stopW, []byte{0})
	<-pl.done
	pl.wakeAll()
	syscall.Close(pl.epfd)
	syscall.Close(pl.stopR)
	syscall.Close(pl.stopW)
}

// count is the number of parked clients.
func (pl *poller) count() int {
	pl.mu.Lock()
	defer pl.mu.Unlock()
	return len(pl.clients)
}
