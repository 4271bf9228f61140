//go:build !unix

package handover

import (
	"errors"
	"net"
	"os"
)

// errUnsupported: passing descriptors needs Unix sockets (SCM_RIGHTS).
var errUnsupported = errors.New("handover_socket is not supported on this platform")

// ErrNoPredecessor is returned by Take when no running mux answers.
var ErrNoPredecessor = errors.New("no predecessor to take over from")

// Offering is what a process offers besides its listeners.
type Offering struct {
	Clients    bool
	CancelAddr string
}

// Successor is the new mux a running one hands over to; there is none on
// this platform.
type Successor struct {
	WantsClients bool
	Limit        int
}

// Room is how many more clients the successor takes: none here.
func (s *Successor) Room() int { return 0 }

// Err is errUnsupported.
func (s *Successor) Err() error { return errUnsupported }

// Heartbeat fails: there is no handover on this platform.
func (s *Successor) Heartbeat() error { return errUnsupported }

// SendBatch fails: there is no handover on this platform.
func (s *Successor) SendBatch([]int, []ClientState) error { return errUnsupported }

// Close does nothing.
func (s *Successor) Close() error { return nil }

// Predecessor is the running mux a new one takes over from; there is none
// on this platform.
type Predecessor struct {
	Listeners  []net.Listener
	Clients    bool
	CancelAddr string
}

// Confirm does nothing.
func (p *Predecessor) Confirm(bool, int) error { return nil }

// Close does nothing.
func (p *Predecessor) Close() error { return nil }

// ReceiveClients receives nothing.
func (p *Predecessor) ReceiveClients(func(*os.File, ClientState)) (int, error) { return 0, nil }

// Offer fails: there is no handover on this platform.
func Offer(string, []net.Listener, Offering, func(*Successor)) (func(), error) {
	return nil, errUnsupported
}

// Take finds no predecessor: on this platform a new mux always binds its
// own listeners.
func Take(string) (*Predecessor, error) { return nil, ErrNoPredecessor }
