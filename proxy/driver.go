package proxy

import (
	"io"
	"syscall"

	"github.com/muxpg/mux/internal/rawio"
	"github.com/muxpg/mux/internal/wire"
)

// The goroutine driver: a goroutine per busy client reads it (TLS
// clients, workers = 0, platforms without event loops).

// relay runs the session until the client leaves or fails, or the session
// is parked (errParked).
func (c *clientConn) relay() error {
	for {
		if err := c.fill(); err != nil {
			if err = c.readFailed(err); err != nil {
				return err
			}
			continue
		}
		process := c.process
		if c.track {
			process = c.processTracked
		}
		if err := process(); err != nil {
			return err
		}
	}
}

// rawRead is called by RawConn.Read: it takes a buffer only once data is
// there, so an idle client holds none.
func (c *clientConn) rawRead(fd uintptr) bool {
	if c.in.bp == nil {
		c.in.bp = wire.GetBuf(wire.SmallBufSize)
	}
	for {
		n, err := rawio.Read(fd, (*c.in.bp)[c.in.w:])
		if err == syscall.EINTR {
			continue
		}
		if err == syscall.EAGAIN {
			if c.in.w == 0 {
				wire.PutBuf(c.in.bp)
				c.in.bp = nil
			}
			return false
		}
		c.in.nread, c.in.rerr = n, err
		return true
	}
}

// compactInput makes room at the end of the input buffer for the next
// read.
func (c *clientConn) compactInput() {
	if c.in.bp == nil {
		return
	}
	if cap(*c.in.bp) < wire.SmallBufSize {
		// Kept small while the client waited (shrinkInput): reads need
		// room.
		nb := wire.GetBuf(wire.SmallBufSize)
		c.in.w = copy(*nb, (*c.in.bp)[c.in.r:c.in.w])
		c.in.r = 0
		wire.PutBuf(c.in.bp)
		c.in.bp = nb
		return
	}
	buf := *c.in.bp
	if c.in.r == c.in.w {
		c.in.r, c.in.w = 0, 0
	} else if c.in.w == len(buf) && c.in.r > 0 {
		c.in.w = copy(buf, buf[c.in.r:c.in.w])
		c.in.r = 0
	}
}

// fill reads more client bytes into the input buffer.
func (c *clientConn) fill() error {
	c.compactInput()
	if c.in.raw != nil {
		c.in.nread, c.in.rerr = 0, nil
		if err := c.in.raw.Read(c.in.readFn); err != nil {
			return err
		}
		if c.in.nread > 0 {
			c.in.w += c.in.nread
			return nil
		}
		return c.in.rerr
	}
	if c.in.bp == nil {
		c.in.bp = wire.GetBuf(wire.SmallBufSize)
	}
	n, err := c.conn.Read((*c.in.bp)[c.in.w:])
	c.in.w += n
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.EOF
	}
	return err
}
