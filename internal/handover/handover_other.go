//go:build !unix

package handover

import (
	"errors"
	"net"
)

// errUnsupported: passing descriptors needs Unix sockets (SCM_RIGHTS).
var errUnsupported = errors.New("handover_socket is not supported on this platform")

// ErrNoPredecessor is returned by Take when no running mux answers.
var ErrNoPredecessor = errors.New("no predecessor to take over from")

// Offer fails: there is no handover on this platform.
func Offer(string, []net.Listener, func()) (func(), error) { return nil, errUnsupported }

// Take finds no predecessor: on this platform a new mux always binds its
// own listeners.
func Take(string) ([]net.Listener, func() error, error) { return nil, nil, ErrNoPredecessor }
