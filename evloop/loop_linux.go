//go:build linux

package evloop

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

// Loop is one event loop: a goroutine that polls the sockets of the
// clients it drives and of the servers it reads in one level-triggered
// epoll set, and runs their handlers itself. It never blocks in a system
// call: it polls the set with a zero timeout and, when nothing is ready,
// waits for the set's own descriptor to turn readable in Go's poller, so
// its thread keeps its P (PERFORMANCE.md, "The floor of each design").
//
// Every server socket is also in a second, smaller set that the loop polls
// after a full batch (priority), so that a burst of ready clients cannot
// keep servers' replies, and the servers, waiting.
//
// Everything registered with the loop is keyed by a token in the epoll
// event's data, never by descriptor, so a descriptor closed and reused
// elsewhere cannot reach the wrong handler. Other goroutines reach the
// loop only through post.
type Loop struct {
	log *zap.Logger
	ep  int // the epoll set (non-blocking)
	sep int // the servers alone, polled first after a full batch (priority)
	efd int // eventfd: a post to a sleeping loop writes it (token 0)
	f   *os.File

	// Owned by the loop's goroutine.
	conns   map[uint64]Conn
	servers map[uint64]*pool.Server
	events  []syscall.EpollEvent
	sevents []syscall.EpollEvent // priority's batch
	run     []task               // the batch of posted tasks being run

	mu       sync.Mutex // guards inbox
	inbox    []task
	sleeping atomic.Bool // the loop is waiting in Go's poller: a post must wake it
	done     chan struct{}
}

// serverToken marks a server's token (clients' tokens are their ids).
const serverToken = 1 << 63

type taskKind uint8

const (
	taskAddConn      taskKind = iota // start driving c (token tok)
	taskConn                         // run ev on c
	taskAddServer                    // start reading s
	taskPokeServer                   // s may have been closed
	taskResumeServer                 // resume reading s after back-pressure
	taskStop
)

// task is an event born outside the loop's set, run on the loop.
type task struct {
	kind taskKind
	tok  uint64
	c    Conn
	s    *pool.Server
	ev   Event
}

// Supported reports whether this platform has event loops.
const Supported = true

// New starts an event loop.
func New(log *zap.Logger) (*Loop, error) {
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
	sep, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		syscall.Close(ep)
		syscall.Close(int(efd))
		return nil, err
	}
	l := &Loop{
		log:     log,
		ep:      ep,
		sep:     sep,
		efd:     int(efd),
		f:       os.NewFile(uintptr(ep), "epoll"),
		conns:   map[uint64]Conn{},
		servers: map[uint64]*pool.Server{},
		events:  make([]syscall.EpollEvent, 128),
		sevents: make([]syscall.EpollEvent, 64),
		done:    make(chan struct{}),
	}
	go l.loop()
	return l, nil
}

// post hands t to the loop. It never blocks; it costs a system call only
// when the loop sleeps.
func (l *Loop) post(t task) {
	l.mu.Lock()
	l.inbox = append(l.inbox, t)
	l.mu.Unlock()
	if l.sleeping.CompareAndSwap(true, false) {
		one := uint64(1)
		_, _, _ = syscall.RawSyscall(syscall.SYS_WRITE, uintptr(l.efd), uintptr(unsafe.Pointer(&one)), 8)
	}
}

func (l *Loop) loop() {
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
			if int(n) == len(l.events) {
				l.priority()
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

// priority reads the servers that are ready, after a full batch: more
// clients may be ready behind it, and in a burst (ten thousand clients
// sending at once) a reply queued behind all of them in the set's ready
// list would keep its server, and every client waiting for one, idle
// meanwhile. Every server socket is in both sets.
func (l *Loop) priority() {
	n, _, e := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, uintptr(l.sep), uintptr(unsafe.Pointer(&l.sevents[0])), uintptr(len(l.sevents)), 0, 0, 0)
	if e != 0 {
		return
	}
	for _, ev := range l.sevents[:int(n)] {
		l.dispatch(ev)
	}
}

// dispatch runs the handler of one ready socket.
func (l *Loop) dispatch(ev syscall.EpollEvent) {
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
		if c := l.conns[tok]; c != nil {
			c.Readable()
		}
	}
}

// runTasks runs what was posted; true when the loop must stop.
func (l *Loop) runTasks() bool {
	l.mu.Lock()
	l.run, l.inbox = l.inbox, l.run[:0]
	l.mu.Unlock()
	stop := false
	for i := range l.run {
		t := &l.run[i]
		switch t.kind {
		case taskAddConn:
			l.conns[t.tok] = t.c
			if !l.Watch(t.tok, t.c.Control, true) {
				t.c.Started(errors.New("cannot poll the client's socket"))
				break
			}
			t.c.Started(nil)
		case taskConn:
			t.c.Handle(t.ev)
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
		*t = task{}
	}
	return stop
}

// Watch adds (on) or removes a descriptor's readiness under token tok. It
// runs on the loop's goroutine.
func (l *Loop) Watch(tok uint64, control func(func(uintptr)) error, on bool) bool {
	return watchIn(l.ep, tok, control, on)
}

// watchServer adds (on) or removes a server's socket in both sets; what
// matters is the main set, the priority set only speeds bursts up.
func (l *Loop) watchServer(s *pool.Server, on bool) bool {
	tok := s.Token() | serverToken
	ok := watchIn(l.ep, tok, s.Control, on)
	if ok || !on {
		watchIn(l.sep, tok, s.Control, on)
	}
	return ok
}

// watchIn adds (on) or removes a descriptor's readiness in set ep under
// token tok.
func watchIn(ep int, tok uint64, control func(func(uintptr)) error, on bool) bool {
	var err error
	cerr := control(func(fd uintptr) {
		if !on {
			err = syscall.EpollCtl(ep, syscall.EPOLL_CTL_DEL, int(fd), nil)
			return
		}
		ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(uint32(tok)), Pad: int32(uint32(tok >> 32))}
		err = syscall.EpollCtl(ep, syscall.EPOLL_CTL_ADD, int(fd), &ev)
		if err == syscall.EEXIST {
			err = nil
		}
	})
	return cerr == nil && (err == nil || !on)
}

// Add hands connection c to the loop, under token tok (below 1<<63,
// unique among the loop's connections). The loop calls c.Started, then
// c.Readable whenever its socket is readable.
func (l *Loop) Add(tok uint64, c Conn) { l.post(task{kind: taskAddConn, tok: tok, c: c}) }

// Post runs c.Handle(ev) on the loop. It never blocks.
func (l *Loop) Post(c Conn, ev Event) { l.post(task{kind: taskConn, c: c, ev: ev}) }

// Forget drops an ended connection (on the loop's goroutine).
func (l *Loop) Forget(tok uint64) { delete(l.conns, tok) }

// ResumeServer has the loop read s again after back-pressure paused it.
func (l *Loop) ResumeServer(s *pool.Server) { l.post(task{kind: taskResumeServer, s: s}) }

// AddServer implements pool.Loop.
func (l *Loop) AddServer(s *pool.Server) bool {
	l.post(task{kind: taskAddServer, s: s})
	return true
}

// PauseServer implements pool.Loop (on the loop's goroutine).
func (l *Loop) PauseServer(s *pool.Server, on bool) {
	if !l.watchServer(s, on) && on {
		l.post(task{kind: taskPokeServer, s: s})
	}
}

// PokeServer implements pool.Loop.
func (l *Loop) PokeServer(s *pool.Server) {
	l.post(task{kind: taskPokeServer, s: s})
}

// Stop ends the loop's goroutine and closes its descriptors.
func (l *Loop) Stop() {
	l.post(task{kind: taskStop})
	<-l.done
	l.f.Close()
	syscall.Close(l.sep)
	syscall.Close(l.efd)
}
