package pool

// Servers read by an event loop instead of a goroutine each.

import (
	"io"
	"net"
	"syscall"

	"github.com/muxpg/mux/internal/rawio"
	"github.com/muxpg/mux/internal/wire"
)

// A Loop polls sockets on one goroutine. A pool given one (SetLoops) lets
// it read each new plain-TCP server: the loop calls ReadReady when the
// socket is readable, so a reply costs no goroutine wake-up. Handlers
// (ServerData) then run on the loop's goroutine and must not block.
type Loop interface {
	// AddServer starts polling s; false if the loop cannot (the server
	// then gets a read goroutine).
	AddServer(s *Server) bool
	// PauseServer stops (on false) or restarts polling s. Called on the
	// loop's goroutine only.
	PauseServer(s *Server, on bool)
	// PokeServer makes the loop call s.ReadReady soon, from any goroutine:
	// a closed socket leaves the loop's set without an event.
	PokeServer(s *Server)
}

// loopState is what the loop that reads a server keeps on it. Owned by that
// loop's goroutine, except loop and rc, which are set before polling starts.
type loopState struct {
	loop    Loop
	rc      syscall.RawConn
	readFn  func(fd uintptr) // s.rawRead, bound once
	writeFn func(fd uintptr) // s.rawWrite, bound once
	n       int              // the read step's result
	err     error            // the read step's error
	// The write step's state. TryWrite runs on the loop of the client
	// that holds the server, which need not be the loop that reads it.
	wb     []byte
	wn     int
	werr   error
	paused bool // a handler asked for back-pressure (Pause)
	ended  bool // the server failed; done is closed
}

// Loop is the event loop that reads the server, or nil.
func (s *Server) Loop() Loop { return s.lp.loop }

// Token identifies the server to its loop.
func (s *Server) Token() uint64 { return s.ID }

// Control runs fn with the server's socket (loop-read servers only); an
// error if it is closed. A client writes to the server it holds this way
// without waiting (its own state: a write that ends after the reply has
// been read and the server handed on must touch nothing of the server's).
func (s *Server) Control(fn func(fd uintptr)) error {
	if s.lp.rc == nil {
		return net.ErrClosed
	}
	return s.lp.rc.Control(fn)
}

// startReading hands s to a loop, or to a read goroutine of its own.
func (s *Server) startReading(l Loop) {
	if l != nil {
		if rc := rawio.RawConn(s.conn); rc != nil {
			s.lp.loop, s.lp.rc = l, rc
			s.lp.readFn = s.rawRead
			s.rs.bp = wire.GetBuf(wire.SmallBufSize)
			if l.AddServer(s) {
				return
			}
			wire.PutBuf(s.rs.bp)
			s.rs.bp = nil
			s.lp = loopState{}
		}
	}
	go s.readLoop()
}

// Pause stops the loop from reading the server until Resume, so that what a
// handler could not pass on yet does not pile up (back-pressure). Called
// from the handler, on the loop's goroutine.
func (s *Server) Pause() {
	if s.lp.loop != nil && !s.lp.paused {
		s.lp.paused = true
		s.lp.loop.PauseServer(s, false)
	}
}

// Resume undoes Pause. Called on the loop's goroutine.
func (s *Server) Resume() {
	if s.lp.loop != nil && s.lp.paused && !s.lp.ended {
		s.lp.paused = false
		s.lp.loop.PauseServer(s, true)
	}
}

// Paused reports whether Pause holds the server.
func (s *Server) Paused() bool { return s.lp.paused }

// ReadReady is called by the server's loop when its socket may be readable:
// one non-blocking read, and the messages it completes go to the handler.
// It reports true once the server has ended (the loop then forgets it).
func (s *Server) ReadReady() (ended bool) {
	if s.lp.ended {
		return true
	}
	if s.lp.paused && !s.broken.Load() {
		return false // a closed server still ends (PokeServer)
	}
	b := s.readSpace()
	if b == nil {
		return s.endLoop()
	}
	s.lp.n, s.lp.err = 0, nil
	s.rs.scratch = b
	if err := s.lp.rc.Control(s.lp.readFn); err != nil {
		s.lp.err = err
	}
	s.rs.scratch = nil
	n, err := s.lp.n, s.lp.err
	if err == syscall.EAGAIN {
		return false
	}
	if n == 0 {
		if err == nil {
			err = io.EOF
		} else if err != io.EOF {
			err = &net.OpError{Op: "read", Net: s.network, Err: err}
		}
		s.fail(err)
		return s.endLoop()
	}
	if !s.received(n) {
		return s.endLoop()
	}
	if s.broken.Load() && s.handlerIsNil() {
		s.close()
		s.fail(net.ErrClosed)
		return s.endLoop()
	}
	return false
}

// rawRead is the read step of ReadReady, run by RawConn.Control.
func (s *Server) rawRead(fd uintptr) {
	for {
		n, err := rawio.Read(fd, s.rs.scratch)
		if err == syscall.EINTR {
			continue
		}
		s.lp.n, s.lp.err = n, err
		return
	}
}

// endLoop is the end of a loop-read server: what the read goroutine does
// on its way out.
func (s *Server) endLoop() bool {
	if !s.lp.ended {
		s.lp.ended = true
		wire.PutBuf(s.rs.bp)
		s.rs.bp = nil
		close(s.done)
	}
	return true
}
