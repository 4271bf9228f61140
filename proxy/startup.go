package proxy

import (
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sort"
	"strings"
	"syscall"

	"github.com/muxpg/mux/internal/rawio"
	"github.com/muxpg/mux/internal/wire"
)

// startup is what a client asked for in its StartupMessage.
type startup struct {
	minor    uint32
	user     string
	database string
	// settings are the run-time parameters the client wants, from the packet
	// and from "options", keyed by lower-cased name in arrival order.
	settings []setting
	// unknownPQ lists "_pq_." protocol options mux does not know; they are
	// echoed in NegotiateProtocolVersion, never treated as settings.
	unknownPQ   []string
	replication string
}

type setting struct {
	name  string // lower case
	value string
}

// cancelKey is the part of a mux-issued cancel key (package cancelkey) a
// session keeps: the process ID and the secret's first four bytes, all of
// a 3.0 secret. A longer secret is kept whole in Proxy.longKeys, so the
// 3.2 protocol costs clientConn nothing.
type cancelKey struct {
	pid    uint32
	secret uint32
}

// readPacket reads one length-prefixed startup-phase packet (no type byte)
// into a buffer of its exact size: a login leaves no 10 KB buffer behind.
func readPacket(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if n < 8 || n > wire.MaxStartupPacketLen {
		return nil, wire.Fatal(wire.CodeProtocolViolation, "invalid length of startup packet")
	}
	body := make([]byte, n-4)
	if _, err := io.ReadFull(r, body); err != nil {
		return nil, err
	}
	return body, nil
}

// hasPendingInput reports whether the client already sent bytes we have not
// read: after an SSLRequest or GSSENCRequest that is a protocol violation
// (and with TLS, the buffer-stuffing attack of CVE-2021-23214). A *tls.Conn
// has no raw socket to peek at and reports false; it is never asked, since a
// second SSLRequest or a GSSENCRequest inside TLS is refused before.
func hasPendingInput(conn net.Conn) bool {
	raw := rawio.RawConn(conn)
	if raw == nil {
		return false
	}
	var one [1]byte
	pending := false
	_ = raw.Read(func(fd uintptr) bool {
		n, _, err := syscall.Recvfrom(int(fd), one[:], syscall.MSG_PEEK|syscall.MSG_DONTWAIT)
		pending = err == nil && n > 0
		return true
	})
	return pending
}

// parseStartup decodes the body of a StartupMessage (after the length and
// protocol version).
func parseStartup(minor uint32, body []byte) (*startup, error) {
	st := &startup{minor: minor}
	for {
		i := bytes.IndexByte(body, 0)
		if i < 0 {
			return nil, wire.Fatal(wire.CodeProtocolViolation, "invalid startup packet layout: expected terminator as last byte")
		}
		if i == 0 {
			if len(body) != 1 {
				return nil, wire.Fatal(wire.CodeProtocolViolation, "invalid startup packet layout: expected terminator as last byte")
			}
			break
		}
		name := string(body[:i])
		body = body[i+1:]
		j := bytes.IndexByte(body, 0)
		if j < 0 {
			return nil, wire.Fatal(wire.CodeProtocolViolation, "invalid startup packet layout: expected terminator as last byte")
		}
		value := string(body[:j])
		body = body[j+1:]
		switch {
		case name == "user":
			st.user = value
		case name == "database":
			st.database = value
		case name == "replication":
			st.replication = value
		case name == "options":
			opts, err := parseOptions(value)
			if err != nil {
				return nil, err
			}
			st.settings = append(st.settings, opts...)
		case strings.HasPrefix(name, "_pq_."):
			st.unknownPQ = append(st.unknownPQ, name)
		default:
			st.settings = append(st.settings, setting{name: strings.ToLower(name), value: value})
		}
	}
	if st.user == "" {
		return nil, wire.Fatal(wire.CodeInvalidAuthorization, "no PostgreSQL user name specified in startup packet")
	}
	if st.database == "" {
		st.database = st.user
	}
	if st.replication != "" && !isFalse(st.replication) {
		return nil, wire.Fatal(wire.CodeFeatureNotSupported, "replication connections are not supported by mux; connect to PostgreSQL directly for replication")
	}
	sort.Strings(st.unknownPQ)
	return st, nil
}

func isFalse(v string) bool {
	switch strings.ToLower(v) {
	case "false", "off", "no", "0":
		return true
	}
	return false
}

// splitOptions splits a startup "options" value on whitespace; a backslash
// escapes the next character, as libpq documents.
func splitOptions(s string) []string {
	var out []string
	var cur strings.Builder
	in := false
	for i := 0; i < len(s); i++ {
		ch := s[i]
		switch {
		case ch == '\\' && i+1 < len(s):
			i++
			cur.WriteByte(s[i])
			in = true
		case ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' || ch == '\f' || ch == '\v':
			if in {
				out = append(out, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteByte(ch)
			in = true
		}
	}
	if in {
		out = append(out, cur.String())
	}
	return out
}

// parseOptions reads "-c name=value", "-cname=value" and "--name=value"
// switches from a startup "options" value. Other postgres command-line
// switches cannot be applied to a pooled server and are refused.
func parseOptions(s string) ([]setting, error) {
	args := splitOptions(s)
	var out []setting
	for i := 0; i < len(args); i++ {
		a := args[i]
		var kv string
		switch {
		case a == "-c":
			if i+1 >= len(args) {
				return nil, wire.Fatal(wire.CodeProtocolViolation, "invalid command-line argument for server process: -c needs name=value")
			}
			i++
			kv = args[i]
		case strings.HasPrefix(a, "-c"):
			kv = a[2:]
		case strings.HasPrefix(a, "--"):
			kv = a[2:]
		default:
			return nil, &wire.Error{Severity: "FATAL", Code: wire.CodeFeatureNotSupported,
				Message: "unsupported startup option " + quote(a),
				Hint:    "mux applies only -c name=value and --name=value settings from options"}
		}
		eq := strings.IndexByte(kv, '=')
		if eq <= 0 {
			return nil, wire.Fatal(wire.CodeInvalidParameterValue, "invalid setting in options: %s (expected name=value)", quote(kv))
		}
		name := strings.ToLower(strings.ReplaceAll(kv[:eq], "-", "_"))
		out = append(out, setting{name: name, value: kv[eq+1:]})
	}
	return out, nil
}

func quote(s string) string { return `"` + s + `"` }
