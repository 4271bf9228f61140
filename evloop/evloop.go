// Package evloop runs mux's event loops: on Linux, a goroutine per loop
// that polls the sockets of the clients it drives and of the servers it
// reads in one level-triggered epoll set, and runs their handlers itself
// (ARCHITECTURE.md, "Event loops"). Elsewhere there are none, and mux
// relays with goroutines.
package evloop

import "github.com/muxpg/mux/pool"

// Conn is a connection a loop drives. Its methods run on the loop's
// goroutine and must not block.
type Conn interface {
	// Control runs f with the connection's descriptor (syscall.RawConn).
	Control(f func(fd uintptr)) error
	// Started runs when the loop takes the connection up; err says it
	// could not poll its socket, and the connection must end.
	Started(err error)
	// Readable runs when the socket is readable or hung up (level
	// triggered: again and again while it stays so, unless unwatched).
	Readable()
	// Handle runs an event posted for the connection (Post).
	Handle(ev Event)
}

// Event is something born outside a loop for one of its connections: its
// Kind means what the connection says it means.
type Event struct {
	Kind uint8
	S    *pool.Server
	Err  error
}
