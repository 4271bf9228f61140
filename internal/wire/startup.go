package wire

import "encoding/binary"

// StartupPacket builds a startup-phase packet: its length, version (a
// protocol version, or a request code such as SSLRequest's) and the
// name/value pairs given, each NUL-terminated, then the closing NUL. mux
// never sends one to a client; tests and tools that play one do.
func StartupPacket(version uint32, params ...string) []byte {
	b := make([]byte, 8)
	binary.BigEndian.PutUint32(b[4:], version)
	for _, p := range params {
		b = append(b, p...)
		b = append(b, 0)
	}
	b = append(b, 0)
	binary.BigEndian.PutUint32(b, uint32(len(b)))
	return b
}
