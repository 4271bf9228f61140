package login

import (
	"bytes"
	"encoding/binary"
	"io"
	"sort"
	"strings"

	"github.com/muxpg/mux/internal/cancelkey"
	"github.com/muxpg/mux/internal/wire"
)

// Startup is what a client asked for in its StartupMessage.
type Startup struct {
	Minor    uint32
	User     string
	Database string
	// Settings are the run-time parameters the client wants, from the
	// packet and from "options", keyed by lower-cased name in arrival
	// order.
	Settings []Setting
	// UnknownPQ lists "_pq_." protocol options mux does not know; they are
	// echoed in NegotiateProtocolVersion, never treated as settings.
	UnknownPQ []string
	// Replication is the kind of replication connection asked for
	// (replication.go).
	Replication Replication
}

// Setting is one run-time parameter.
type Setting struct {
	Name  string // lower case
	Value string
}

// readBody reads the rest of a length-prefixed startup-phase packet (no
// type byte) whose length word is hdr, into a buffer of its exact size: a
// login leaves no 10 KB buffer behind.
func readBody(r io.Reader, hdr [4]byte) ([]byte, error) {
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

// parseStartup decodes the body of a StartupMessage (after the length and
// protocol version).
func parseStartup(minor uint32, body []byte) (*Startup, error) {
	st := &Startup{Minor: minor}
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
			st.User = value
		case name == "database":
			st.Database = value
		case name == "replication":
			r, err := parseReplication(value)
			if err != nil {
				return nil, err
			}
			st.Replication = r
		case name == "options":
			opts, err := parseOptions(value)
			if err != nil {
				return nil, err
			}
			st.Settings = append(st.Settings, opts...)
		case strings.HasPrefix(name, "_pq_."):
			st.UnknownPQ = append(st.UnknownPQ, name)
		default:
			st.Settings = append(st.Settings, Setting{Name: strings.ToLower(name), Value: value})
		}
	}
	if st.User == "" {
		return nil, wire.Fatal(wire.CodeInvalidAuthorization, "no PostgreSQL user name specified in startup packet")
	}
	if st.Database == "" {
		st.Database = st.User
	}
	sort.Strings(st.UnknownPQ)
	return st, nil
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
func parseOptions(s string) ([]Setting, error) {
	args := splitOptions(s)
	var out []Setting
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
		out = append(out, Setting{Name: name, Value: kv[eq+1:]})
	}
	return out, nil
}

// ReadStartup runs the pre-authentication state machine: GSSENCRequest is
// answered 'N'; SSLRequest 'S' if client TLS (t) is on (the handshake
// follows and the loop goes on inside TLS), else 'N'. A ClientHello as the
// first bytes is direct TLS (direct.go), and the loop goes on inside it.
// It returns the parsed StartupMessage, or the key of a CancelRequest (for
// the caller to route; the connection has nothing more to say).
func ReadStartup(c *Conn, t *ClientTLS) (*Startup, *cancelkey.Key, error) {
	sawSSL, sawGSS := false, false
	for first := true; ; first = false {
		var hdr [4]byte
		if _, err := io.ReadFull(c, hdr[:]); err != nil {
			return nil, nil, err
		}
		if first && hdr[0] == tlsHandshakeRecord {
			if err := c.startDirectTLS(t, hdr[:]); err != nil {
				return nil, nil, err
			}
			sawSSL, sawGSS = true, true // as after an SSLRequest
			continue
		}
		body, err := readBody(c, hdr)
		if err != nil {
			return nil, nil, err
		}
		code := binary.BigEndian.Uint32(body[:4])
		switch code {
		case wire.SSLRequestCode, wire.GSSENCRequestCode:
			if len(body) != 4 || (code == wire.SSLRequestCode && sawSSL) || (code == wire.GSSENCRequestCode && sawGSS) {
				return nil, nil, wire.Fatal(wire.CodeProtocolViolation, "unsupported frontend protocol request")
			}
			sawSSL = sawSSL || code == wire.SSLRequestCode
			sawGSS = sawGSS || code == wire.GSSENCRequestCode
			if hasPendingInput(c.Conn) {
				return nil, nil, wire.Fatal(wire.CodeProtocolViolation, "received unencrypted data after SSL request")
			}
			if code == wire.SSLRequestCode && c.acceptsTLS(t) {
				if err := c.startTLS(t); err != nil {
					return nil, nil, err
				}
				sawGSS = true // no GSSENCRequest inside TLS, as in PostgreSQL
				continue
			}
			if _, err := c.Write([]byte{'N'}); err != nil {
				return nil, nil, err
			}
		case wire.CancelRequestCode:
			k, err := cancelkey.ParseCancelRequest(body)
			if err != nil {
				return nil, nil, wire.Fatal(wire.CodeProtocolViolation, "invalid length of cancel request")
			}
			return nil, &k, nil
		default:
			major, minor := code>>16, code&0xffff
			if major != 3 {
				return nil, nil, wire.Fatal(wire.CodeFeatureNotSupported,
					"unsupported frontend protocol %d.%d: server supports 3.0 to 3.%d", major, minor, NewestMinor)
			}
			st, err := parseStartup(minor, body[4:])
			return st, nil, err
		}
	}
}
