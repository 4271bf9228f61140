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
// (SCM_RIGHTS) with their addresses, and says whether it offers its idle
// clients too and where it takes cancel requests for the clients it keeps;
// the new one starts accepting and answers "ok" (or "ok clients" to take
// the clients: clients_unix.go); the old one then stops accepting, sends
// its idle clients if asked, and drains.
package handover

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxListeners bounds how many descriptors one hand-over carries.
const maxListeners = 64

// exchangeTimeout bounds each step of a hand-over.
const exchangeTimeout = 10 * time.Second

// Offering is what a process offers besides its listeners.
type Offering struct {
	// Clients: it hands its idle clients over to a successor that asks.
	Clients bool
	// CancelAddr is a Unix socket path where it still takes forwarded
	// cancel requests for the clients it keeps ("" if none).
	CancelAddr string
}

// Offer serves hand-over requests for lns at path until a successor has
// taken them (then done is called once, with the successor, and Offer
// returns) or the returned stop function is called. It replaces a stale
// socket file at path. done must Close the successor.
func Offer(path string, lns []net.Listener, o Offering, done func(*Successor)) (stop func(), err error) {
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
			uc := c.(*net.UnixConn)
			wants, limit, err := give(uc, lns, o)
			if err != nil {
				c.Close()
				continue
			}
			// Leave the path to the successor, which listens there next.
			ctl.(*net.UnixListener).SetUnlinkOnClose(false)
			ctl.Close()
			done(&Successor{conn: uc, WantsClients: wants, Limit: limit})
			return
		}
	}()
	return func() { ctl.Close() }, nil
}

type header struct {
	Addrs      []string `json:"addrs"`             // network:address of each descriptor, in order
	Clients    bool     `json:"clients,omitempty"` // idle clients follow if asked
	CancelAddr string   `json:"cancel,omitempty"`  // where forwarded cancels go
}

// ackClients is the successor's answer when it takes the clients too; a
// mux that predates the client hand-over answers ackListeners only.
const (
	ackListeners = "ok"
	ackClients   = "ok clients"
)

// give sends the listeners and reads the successor's answer: whether it
// wants the clients too, and how many at most (0: no limit given).
func give(c *net.UnixConn, lns []net.Listener, o Offering) (wantsClients bool, limit int, err error) {
	_ = c.SetDeadline(time.Now().Add(exchangeTimeout))
	var files []*os.File
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()
	h := header{Clients: o.Clients, CancelAddr: o.CancelAddr}
	var fds []int
	for _, ln := range lns {
		fl, ok := ln.(interface{ File() (*os.File, error) })
		if !ok {
			return false, 0, fmt.Errorf("listener %s cannot be handed over", ln.Addr())
		}
		f, err := fl.File()
		if err != nil {
			return false, 0, err
		}
		files = append(files, f)
		fds = append(fds, int(f.Fd()))
		h.Addrs = append(h.Addrs, ln.Addr().Network()+":"+ln.Addr().String())
	}
	payload, err := json.Marshal(h)
	if err != nil {
		return false, 0, err
	}
	payload = append(payload, '\n')
	if _, _, err := c.WriteMsgUnix(payload, syscall.UnixRights(fds...), nil); err != nil {
		return false, 0, err
	}
	// Read byte by byte: what follows the answer is not ours to buffer.
	ack, err := readLine(c)
	if err != nil {
		return false, 0, fmt.Errorf("successor did not confirm: %w", err)
	}
	if ack == ackListeners {
		return false, 0, nil
	}
	// "ok clients" with, from a successor that knows its open-file
	// room, the most clients it takes.
	if rest, ok := strings.CutPrefix(ack, ackClients); ok {
		limit, err := strconv.Atoi(strings.TrimSpace(rest))
		if rest == "" || err == nil && limit > 0 {
			return o.Clients, limit, nil
		}
	}
	return false, 0, fmt.Errorf("successor refused: %q", ack)
}

// readLine reads one short line, without reading past it.
func readLine(c net.Conn) (string, error) {
	var b []byte
	var one [1]byte
	for len(b) < 256 {
		if _, err := io.ReadFull(c, one[:]); err != nil {
			return "", err
		}
		if one[0] == '\n' {
			return strings.TrimSpace(string(b)), nil
		}
		b = append(b, one[0])
	}
	return "", errors.New("answer too long")
}

// ErrNoPredecessor means no running mux offers its listeners at the path.
var ErrNoPredecessor = errors.New("no predecessor to take over from")

// Predecessor is the running mux a new one takes over from.
type Predecessor struct {
	Listeners []net.Listener
	// Clients: it offers its idle clients (ReceiveClients).
	Clients bool
	// CancelAddr is where it takes forwarded cancel requests for the
	// clients it keeps ("" if nowhere).
	CancelAddr string
	conn       *net.UnixConn
}

// Confirm tells the predecessor that the listeners are being served: it
// then stops accepting. With clients, it then sends its idle clients, at
// most limit of them (0: no limit), which the caller must take with
// ReceiveClients; otherwise the exchange is over.
func (p *Predecessor) Confirm(clients bool, limit int) error {
	clients = clients && p.Clients && limit >= 0
	ack := ackListeners
	if clients {
		ack = ackClients
		if limit > 0 {
			ack += " " + strconv.Itoa(limit)
		}
	}
	_, err := p.conn.Write([]byte(ack + "\n"))
	if !clients || err != nil {
		p.conn.Close()
	}
	return err
}

// Take asks the mux serving at path for its listeners. Call Confirm once
// the listeners are being served.
func Take(path string) (*Predecessor, error) {
	c, err := net.DialTimeout("unix", path, time.Second)
	if err != nil {
		return nil, ErrNoPredecessor
	}
	uc := c.(*net.UnixConn)
	_ = uc.SetDeadline(time.Now().Add(exchangeTimeout))
	buf := make([]byte, 64<<10)
	oob := make([]byte, syscall.CmsgSpace(4*maxListeners))
	n, oobn, _, _, err := uc.ReadMsgUnix(buf, oob)
	if err != nil {
		uc.Close()
		return nil, fmt.Errorf("handover: %w", err)
	}
	msgs, err := syscall.ParseSocketControlMessage(oob[:oobn])
	if err != nil {
		uc.Close()
		return nil, fmt.Errorf("handover: %w", err)
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
		return nil, fmt.Errorf("handover: malformed message from predecessor")
	}
	var lns []net.Listener
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
			return nil, fmt.Errorf("handover: %w", err)
		}
		if ul, ok := ln.(*net.UnixListener); ok {
			// The socket file belongs to whichever process runs last.
			ul.SetUnlinkOnClose(false)
		}
		lns = append(lns, ln)
	}
	return &Predecessor{Listeners: lns, Clients: h.Clients, CancelAddr: h.CancelAddr, conn: uc}, nil
}
