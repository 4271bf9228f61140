package proxy

import (
	"encoding/binary"
	"testing"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/sqllex"
)

// FuzzStartup feeds arbitrary startup packet bodies (after the length) to
// the parser: it must never panic, and what it accepts must be sane.
func FuzzStartup(f *testing.F) {
	f.Add(startupPacket(3<<16, "user", "u", "database", "d", "options", "-c a=b --c-d=e")[4:])
	f.Add(startupPacket(3<<16|2, "user", "u", "_pq_.x", "1")[4:])
	f.Add(startupPacket(3<<16, "user", "u", "options", `-c a=b\ c -cx=y`)[4:])
	f.Add([]byte{0, 3, 0, 0, 0})
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) < 4 || len(body) > wire.MaxStartupPacketLen {
			return
		}
		code := binary.BigEndian.Uint32(body)
		st, err := parseStartup(code&0xffff, body[4:])
		if err != nil {
			if _, ok := err.(*wire.Error); !ok {
				t.Fatalf("error %T is not a wire.Error", err)
			}
			return
		}
		if st.user == "" || st.database == "" {
			t.Fatalf("accepted startup without user or database: %+v", st)
		}
		for _, s := range st.settings {
			if s.name == "" {
				t.Fatal("empty setting name accepted")
			}
		}
	})
}

// FuzzRefuseListen checks the Query/Parse inspection never panics and only
// ever produces a well-formed message of the same type.
func FuzzRefuseListen(f *testing.F) {
	f.Add([]byte("LISTEN x"), false)
	f.Add([]byte("select 'listen'; listen y"), true)
	f.Add([]byte("/* listen */ select 1"), false)
	f.Fuzz(func(t *testing.T, sql []byte, parse bool) {
		var msg []byte
		if parse {
			body := append([]byte("s1\x00"), sql...)
			body = append(body, 0, 0, 0)
			msg = append([]byte{'P', 0, 0, 0, 0}, body...)
		} else {
			msg = append([]byte{'Q', 0, 0, 0, 0}, sql...)
			msg = append(msg, 0)
		}
		binary.BigEndian.PutUint32(msg[1:5], uint32(len(msg)-1))
		out := refuseListen(msg, sqllex.Options{StandardConformingStrings: true})
		if out == nil {
			return
		}
		typ, l := wire.Header(out)
		if typ != msg[0] || l != len(out)-1 {
			t.Fatalf("malformed replacement %q", out)
		}
	})
}
