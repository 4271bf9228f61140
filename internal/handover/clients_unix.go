//go:build unix

package handover

// Moving clients: after "ok clients" the predecessor sends frames on the
// hand-over connection, each a 4-byte big-endian length and a batch
// (clients.go), with the batch's sockets attached (SCM_RIGHTS) to the
// frame's first byte, in the batch's order; a zero length ends the
// exchange. The receiver keeps the descriptors in arrival order and gives
// each frame the first ones: the kernel delivers a frame's descriptors no
// later than its first byte, however it cuts the stream into reads.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"os"
	"syscall"
	"time"
)

// clientTimeout bounds each write and read of the client exchange: the
// other side is a process on this host, busy at most with adopting a
// batch.
const clientTimeout = 30 * time.Second

// Successor is the new mux a running one hands over to.
type Successor struct {
	conn *net.UnixConn
	// WantsClients: it asked for the idle clients (SendBatch).
	WantsClients bool
	// Limit is the most clients it takes (its open-file room); 0: it
	// gave none.
	Limit int

	sent int   // clients sent so far
	err  error // the first failed write: nothing more goes
}

// Room is how many more clients the successor takes; -1: no limit.
func (s *Successor) Room() int {
	if s.Limit <= 0 {
		return -1
	}
	return max(s.Limit-s.sent, 0)
}

// Err is the write that failed, if one has: the exchange is over.
func (s *Successor) Err() error { return s.err }

// Heartbeat sends an empty batch, so that the successor, waiting for the
// clients that are still busy here, knows the exchange goes on.
func (s *Successor) Heartbeat() error {
	if s.err != nil {
		return s.err
	}
	frame := binary.BigEndian.AppendUint32(nil, 0)
	frame = AppendBatch(frame, nil)
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	_ = s.conn.SetWriteDeadline(time.Now().Add(clientTimeout))
	_, s.err = s.conn.Write(frame)
	return s.err
}

// SendBatch sends the sockets fds (one per state, at most MaxBatch) with
// the clients' states. The descriptors stay the caller's to close.
func (s *Successor) SendBatch(fds []int, states []ClientState) error {
	if s.err != nil {
		return s.err
	}
	if len(fds) != len(states) || len(fds) > MaxBatch || len(fds) == 0 {
		return fmt.Errorf("handover: a batch of %d sockets and %d states", len(fds), len(states))
	}
	frame := make([]byte, 4, 4+256*len(states))
	frame = AppendBatch(frame, states)
	if len(frame)-4 > maxFrame {
		return errors.New("handover: client state too large")
	}
	binary.BigEndian.PutUint32(frame, uint32(len(frame)-4))
	_ = s.conn.SetWriteDeadline(time.Now().Add(clientTimeout))
	n, _, err := s.conn.WriteMsgUnix(frame, syscall.UnixRights(fds...), nil)
	if err == nil && n < len(frame) {
		_, err = s.conn.Write(frame[n:])
	}
	if err != nil {
		s.err = err
		return err
	}
	s.sent += len(states)
	return nil
}

// Close ends the exchange: the successor has every client sent.
func (s *Successor) Close() error {
	if s.WantsClients && s.err == nil {
		_ = s.conn.SetWriteDeadline(time.Now().Add(clientTimeout))
		_, _ = s.conn.Write([]byte{0, 0, 0, 0})
	}
	return s.conn.Close()
}

// ReceiveClients takes the clients the predecessor sends (after
// Confirm(true)) until it ends the exchange, calling adopt for each with
// its socket (the callee owns it) and state, and returns how many came.
// On an error the sockets received and not yet adopted are closed.
func (p *Predecessor) ReceiveClients(adopt func(f *os.File, st ClientState)) (int, error) {
	defer p.conn.Close()
	r := frameReader{c: p.conn, oob: make([]byte, syscall.CmsgSpace(4*MaxBatch*2))}
	defer r.closeFDs()
	total := 0
	for {
		frame, err := r.next()
		if err != nil {
			return total, err
		}
		if frame == nil {
			return total, nil
		}
		states, err := DecodeBatch(frame)
		if err != nil {
			return total, err
		}
		if len(states) > len(r.fds) {
			return total, fmt.Errorf("handover: %d client states but %d sockets", len(states), len(r.fds))
		}
		for i, st := range states {
			adopt(os.NewFile(uintptr(r.fds[i]), "client"), st)
		}
		r.fds = r.fds[len(states):]
		total += len(states)
	}
}

// Close ends the exchange from the successor's side without taking the
// clients: the predecessor keeps them.
func (p *Predecessor) Close() error { return p.conn.Close() }

// frameReader reads length-prefixed frames and the descriptors that come
// with them.
type frameReader struct {
	c   *net.UnixConn
	buf []byte // read and not yet returned
	oob []byte
	fds []int // received and not yet given to a frame
}

// next returns the next frame, or nil at the end of the exchange.
func (r *frameReader) next() ([]byte, error) {
	for {
		if len(r.buf) >= 4 {
			n := int(binary.BigEndian.Uint32(r.buf))
			if n > maxFrame {
				return nil, errors.New("handover: client frame too large")
			}
			if n == 0 {
				return nil, nil
			}
			if len(r.buf) >= 4+n {
				frame := r.buf[4 : 4+n : 4+n]
				r.buf = r.buf[4+n:]
				return frame, nil
			}
		}
		if err := r.read(); err != nil {
			return nil, err
		}
	}
}

func (r *frameReader) read() error {
	var chunk [64 << 10]byte
	_ = r.c.SetReadDeadline(time.Now().Add(clientTimeout))
	n, oobn, flags, _, err := r.c.ReadMsgUnix(chunk[:], r.oob)
	if oobn > 0 {
		msgs, perr := syscall.ParseSocketControlMessage(r.oob[:oobn])
		if perr == nil {
			for i := range msgs {
				if fds, err := syscall.ParseUnixRights(&msgs[i]); err == nil {
					for _, fd := range fds {
						syscall.CloseOnExec(fd)
					}
					r.fds = append(r.fds, fds...)
				}
			}
		}
	}
	if flags&syscall.MSG_CTRUNC != 0 {
		return errors.New("handover: sockets lost in transit (control message truncated)")
	}
	if err != nil {
		// A failed read gives n = -1 (a deadline, a reset): no bytes.
		return err
	}
	r.buf = append(r.buf, chunk[:n]...)
	if n == 0 {
		return errors.New("handover: predecessor closed the exchange early")
	}
	return nil
}

func (r *frameReader) closeFDs() {
	for _, fd := range r.fds {
		syscall.Close(fd)
	}
	r.fds = nil
}
