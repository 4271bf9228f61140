//go:build linux

package proxy

import (
	"errors"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"unsafe"

	"go.uber.org/zap"

	"github.com/muxpg/mux/pool"
)

// evloop is one event loop: a goroutine that polls the sockets of the
// clients it drives and of the servers it reads in one level-triggered
// epoll set, and runs their handlers itself. It never blocks in a system
// call: it polls the set with a zero timeout and, when nothing is ready,
// waits for the set's own descriptor to turn readable in Go's poller, so
// its thread keeps its P (PERFORMANCE.md, "The floor of each design").
//
// Everything registered with the loop is keyed by a token in the epoll
// event's data, never by descriptor, so a descriptor closed and reused
// elsewhere cannot reach the wrong handler. Other goroutines reach the
// loop only through post.
type evloop struct {
	log *zap.Logger
	ep  int // the epoll set (non-blocking)
	efd int // eventfd: a post to a sleeping loop writes it (token 0)
	f   *os.File

	// Owned by the loop's goroutine.
	clients map[uint64]*clientConn
	servers map[uint64]*pool.Server
	events  []syscall.EpollEvent
	run     []loopTask // the batch of posted tasks being run

	mu       sync.Mutex // guards inbox
	inbox    []loopTask
	sleeping atomic.Bool // the loop is waiting in Go's poller: a post must wake it
	done     chan struct{}
}

// serverToken marks a server's token (clients' tokens are their ids).
const serverToken = 1 << 63

type taskKind uint8

const (
	taskAddClient    taskKind = iota // start driving c
	taskWake                         // c may have to end (terminate, idle timeout)
	taskGrant                        // c's wait for a server ended (s, err)
	taskBack                         // c's offloaded work is done (err)
	taskFlushed                      // c's slow write finished
	taskAddServer                    // start reading s
	taskPokeServer                   // s may have been closed
	taskResumeServer                 // resume reading s after back-pressure
	taskStop
)

// loopTask is an event born outside the loop's set, run on the loop.
type loopTask struct {
	kind taskKind
	c    *clientConn
	s    *pool.Server
	err  error
}

func newLoop(log *zap.Logger) (*evloop, error) {
	ep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	efd, _, e := syscall.RawSyscall(syscall.SYS_EVENTFD2, 0, uintptr(syscall.O_NONBLOCK|syscall.O_CLOEXEC), 0)
	if e != 0 {
		syscall.Close(ep)
		return nil, e
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN}
	if err := syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, int(efd), &ev); err != nil {
		syscall.Close(ep)
		syscall.Close(int(efd))
		return nil, err
	}
	if err := syscall.SetNonblock(ep, true); err != nil {
		syscall.Close(ep)
		syscall.Close(int(efd))
		return nil, err
	}
	l := &evloop{
		log:     log,
		ep:      ep,
		efd:     int(efd),
		f:       os.NewFile(uintptr(ep), "epoll"),
		clients: map[uint64]*clientConn{},
		servers: map[uint64]*pool.Server{},
		events:  make([]syscall.EpollEvent, 128),
		done:    make(chan struct{}),
	}
	go l.loop()
	return l, nil
}

// post hands t to the loop. It never blocks; it costs a system call only
// when the loop sleeps.
func (l *evloop) post(t loopTask) {
	l.mu.Lock()
	l.inbox = append(l.inbox, t)
	l.mu.Unlock()
	if l.sleeping.CompareAndSwap(true, false) {
		one := uint64(1)
		_, _, _ = syscall.RawSyscall(syscall.SYS_WRITE, uintptr(l.efd), uintptr(unsafe.Pointer(&one)), 8)
	}
}

func (l *evloop) loop() {
	defer close(l.done)
	rc, err := l.f.SyscallConn()
	if err != nil {
		l.log.Error("event loop cannot wait for its epoll set", zap.Error(err))
		return
	}
	stop := false
	step := func(fd uintptr) bool {
		for !stop {
			n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, fd, uintptr(unsafe.Pointer(&l.events[0])), uintptr(len(l.events)), 0, 0, 0)
			if e == syscall.EINTR {
				n = 0
			} else if e != 0 {
				l.log.Error("epoll_pwait failed", zap.Error(e))
				stop = true
				break
			}
			for _, ev := range l.events[:int(n)] {
				l.dispatch(ev)
			}
			stop = l.runTasks()
			if n > 0 || stop {
				continue
			}
			// Nothing ready: sleep, unless a post came in meanwhile.
			l.sleeping.Store(true)
			l.mu.Lock()
			pending := len(l.inbox)
			l.mu.Unlock()
			if pending > 0 {
				l.sleeping.Store(false)
				continue
			}
			return false
		}
		return true
	}
	for !stop {
		if err := rc.Read(step); err != nil {
			if !errors.Is(err, os.ErrClosed) {
				l.log.Error("event loop ended", zap.Error(err))
			}
			return
		}
	}
}

// dispatch runs the handler of one ready socket.
func (l *evloop) dispatch(ev syscall.EpollEvent) {
	tok := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
	switch {
	case tok == 0:
		var b [8]byte
		_, _, _ = syscall.RawSyscall(syscall.SYS_READ, uintptr(l.efd), uintptr(unsafe.Pointer(&b[0])), 8)
	case tok&serverToken != 0:
		if s := l.servers[tok&^serverToken]; s != nil && s.ReadReady() {
			delete(l.servers, s.Token())
		}
	default:
		if c := l.clients[tok]; c != nil {
			c.loopReadable()
		}
	}
}

// runTasks runs what was posted; true when the loop must stop.
func (l *evloop) runTasks() bool {
	l.mu.Lock()
	l.run, l.inbox = l.inbox, l.run[:0]
	l.mu.Unlock()
	stop := false
	for i := range l.run {
		t := &l.run[i]
		switch t.kind {
		case taskAddClient:
			t.c.lc.added = true
			l.clients[t.c.id] = t.c
			if !l.watch(t.c.id, t.c.raw.Control, true) {
				t.c.loopEnd(errors.New("cannot poll the client's socket"))
				break
			}
			t.c.loopReadable()
		case taskWake:
			t.c.loopWake()
		case taskGrant:
			t.c.loopGranted(t.s, t.err)
		case taskBack:
			t.c.loopBack(t.err)
		case taskFlushed:
			t.c.loopFlushed()
		case taskAddServer:
			l.servers[t.s.Token()] = t.s
			if !l.watchServer(t.s, true) {
				t.s.ReadReady() // the socket is gone: let the server end
				delete(l.servers, t.s.Token())
			}
		case taskPokeServer, taskResumeServer:
			if s := l.servers[t.s.Token()]; s != nil {
				if t.kind == taskResumeServer {
					s.Resume()
				}
				if s.ReadReady() {
					delete(l.servers, s.Token())
				}
			}
		case taskStop:
			stop = true
		}
		*t = loopTask{}
	}
	return stop
}

// watch adds (on) or removes a descriptor's readiness under token tok.
func (l *evloop) watch(tok uint64, control func(func(uintptr)) error, on bool) bool {
	var err error
	cerr := control(func(fd uintptr) {
		if !on {
			err = syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_DEL, int(fd), nil)
			return
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(uint32(tok)), Pad: int32(uint32(tok >> 32))}
		err = syscall.EpollCtl(l.ep, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		if err == syscall.EEXIST {
			err = nil
		}
	})
	return cerr == nil && (err == nil || !on)
}

func (l *evloop) watchServer(s *pool.Server, on bool) bool {
	return l.watch(s.Token()|serverToken, s.Control, on)
}

// forget drops an ended client (on the loop's goroutine).
func (l *evloop) forget(c *clientConn) { delete(l.clients, c.id) }

// AddServer implements pool.Loop.
func (l *evloop) AddServer(s *pool.Server) bool {
	l.post(loopTask{kind: taskAddServer, s: s})
	return true
}

// PauseServer implements pool.Loop (on the loop's goroutine).
func (l *evloop) PauseServer(s *pool.Server, on bool) {
	if !l.watchServer(s, on) && on {
		l.post(loopTask{kind: taskPokeServer, s: s})
	}
}

// PokeServer implements pool.Loop.
func (l *evloop) PokeServer(s *pool.Server) {
	l.post(loopTask{kind: taskPokeServer, s: s})
}

// stop ends the loop's goroutine and closes its descriptors.
func (l *evloop) stop() {
	l.post(loopTask{kind: taskStop})
	<-l.done
	l.f.Close()
	syscall.Close(l.efd)
}

// loopsSupported reports whether this platform has event loops.
const loopsSupported = true
