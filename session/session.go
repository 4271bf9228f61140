// Package session is the protocol core of one client session, without I/O:
// it frames what the client sends, keeps the release rule's state (what
// the server still owes the client), decides at each reply what becomes of
// the server, and times queries and transactions. Callers feed it bytes
// and events and carry out the decisions it returns (write, acquire,
// release, close); it takes no locks, reads no clock, and never blocks, so
// the fuzz targets and unit tests drive it directly.
package session

import "github.com/muxpg/mux/internal/wire"

// Mode is a pool mode: when a server may go back to the pool.
type Mode uint8

const (
	// Session mode keeps the server until the client leaves.
	Session Mode = iota
	// Transaction mode lets go of it after each transaction.
	Transaction
	// Statement mode lets go of it after each statement, and refuses
	// transaction blocks.
	Statement
)

// ModeOf maps a config pool_mode value to its Mode; anything but
// "transaction" and "statement" is Session.
func ModeOf(s string) Mode {
	switch s {
	case "transaction":
		return Transaction
	case "statement":
		return Statement
	}
	return Session
}

// CheckFrame refuses a message header mux cannot frame: a length outside
// [4, maxMsg] or a type no frontend sends (Terminate passes).
func CheckFrame(typ byte, l, maxMsg int) error {
	if l < 4 || l > maxMsg {
		return wire.Fatal(wire.CodeProtocolViolation, "invalid message length %d for message type %q (max_message_size is %d bytes)", l, typ, maxMsg)
	}
	switch typ {
	case 'Q', 'S', 'F', 'P', 'B', 'E', 'D', 'C', 'H', 'd', 'c', 'f', 'X':
		return nil
	}
	return wire.Fatal(wire.CodeProtocolViolation, "invalid frontend message type %d", typ)
}

var modeNames = [...]string{"session", "transaction", "statement"}

// String is the mode's pool_mode name.
func (m Mode) String() string { return modeNames[m] }
