//go:build unix

// Package handover passes listening sockets from a running mux to its
// successor, so a restart neither refuses nor resets a connection.
//
// Both processes hold the same sockets (one accept queue each), so a
// connection waiting in the queue when the old process stops accepting is
// accepted by the new one. Binding a second socket with SO_REUSEPORT would
// not do: closing the old socket resets the connections queued on it.
//
// The exchange, over a Unix socket at a path both processes agree on:
// the new process connects; the old one sends the listeners' descriptors
// (SCM_RIGHTS) with their addresses; the new one starts accepting and
// answers "ok"; the old one then stops accepting and drains.
package handover

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"syscall"
	"time"
)

// maxListeners bounds how many descriptors one hand-over carries.
const maxListeners = 64

// exchangeTimeout bounds each step of a hand-over.
const exchangeTimeout = 10 * time.Second

// Offer serves hand-over requests for lns at path until a successor has
// taken them (then done is called once, and Offer returns) or the returned
// stop function is called. It replaces a stale socket file at path.
func Offer(path string, lns []net.Listener, done func()) (stop func(), err error) {
	_ = os.Remove(path)
	ctl, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("handover socket: %w", err)
	}
	_ = os.Chmod(path, 0o600)
	go func() {
		for {
			c, err := ctl.Accept()
			if err != nil {
				return
			}
			if err := give(c.(*net.UnixConn), lns); err != nil {
				c.Close()
				continue
			}
			c.Close()
			// Leave the path to the successor, which listens there next.
			ctl.(*net.UnixListener).SetUnlinkOnClose(false)
			ctl.Close()
			done()
			return
		}
	}()
	return func() { ctl.Close() }, nil
}

type header struct {
	Addrs []string `json:"addrs"` // network:address of each descriptor, in order
}

func give(c *net.UnixConn, lns []net.Listener) error {
	_ = c.SetDeadline(time.Now().Add(exchangeTimeout))
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	var h header
	var fds []int
	for _, ln := range lns {
		fl, ok := ln.(interface{ File() (*os.File, error) })
		if !ok {
			return fmt.Errorf("listener %s cannot be handed over", ln.Addr())
		}
		f, err := fl.File()
		if err != nil {
			return err
		}
		files = append(files, f)
		fds = append(fds, int(f.Fd()))
		h.Addrs = append(h.Addrs, ln.Addr().Network()+":"+ln.Addr().String())
	}
	payload, err := json.Marshal(h)
	if err != nil {
		return err
	}
	payload = append(payload, '\n')
	if _, _, err := c.WriteMsgUnix(payload, syscall.UnixRights(fds...), nil); err != nil {
		return err
	}
	ack, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("successor did not confirm: %w", err)
	}
	if strings.TrimSpace(ack) != "ok" {
		return fmt.Errorf("successor refused: %q", ack)
	}
	return nil
}

// ErrNoPredecessor means no running mux offers its listeners at the path.
var ErrNoPredecessor = errors.New("no predecessor to take over from")

// Take asks the mux serving at path for its listeners. Call confirm once
// the listeners are being served: the predecessor then stops accepting.
func Take(path string) (lns []net.Listener, confirm func() error, err error) {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil, nil, ErrNoPredecessor
	}
	uc := c.(*net.UnixConn)
	_ = uc.SetDeadline(time.Now().Add(exchangeTimeout))
	buf := make([]byte, 64<<10)
	oob := make([]byte, syscall.CmsgSpace(4*maxListeners))
	n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		uc.Close()
		return nil, nil, fmt.Errorf("handover: %w", err)
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		uc.Close()
		return nil, nil, fmt.Errorf("handover: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		got, err := syscall.ParseUnixRights(&m)
		if err == nil {
			fds = append(fds, got...)
		}
	}
	closeFDs := func() {
		for _, fd := range fds {
			syscall.Close(fd)
		}
	}
	var h header
	if err := json.Unmarshal([]byte(strings.TrimSpace(string(buf[:n]))), &h); err != nil || len(h.Addrs) != len(fds) {
		closeFDs()
		uc.Close()
		return nil, nil, fmt.Errorf("handover: malformed message from predecessor")
	}
	for i, fd := range fds {
		f := os.NewFile(uintptr(fd), h.Addrs[i])
		ln, err := net.FileListener(f)
		f.Close() // FileListener holds its own duplicate
		if err != nil {
			for _, l := range lns {
				l.Close()
			}
			for _, fd := range fds[i+1:] {
				syscall.Close(fd)
			}
			uc.Close()
			return nil, nil, fmt.Errorf("handover: %w", err)
		}
		if ul, ok := ln.(*net.UnixListener); ok {
			// The socket file belongs to whichever process runs last.
			ul.SetUnlinkOnClose(false)
		}
		lns = append(lns, ln)
	}
	confirm = func() error {
		defer uc.Close()
		_, err := uc.Write([]byte("ok\n"))
		return err
	}
	return lns, confirm, nil
}
