package login

import (
	"encoding/binary"
	"testing"

	"github.com/muxpg/mux/internal/wire"
)

// FuzzStartup feeds arbitrary startup packet bodies (after the length) to
// the parser: it must never panic, and what it accepts must be sane.
func FuzzStartup(f *testing.F) {
	f.Add(wire.StartupPacket(3<<16, "user", "u", "database", "d", "options", "-c a=b --c-d=e")[4:])
	f.Add(wire.StartupPacket(3<<16|2, "user", "u", "_pq_.x", "1")[4:])
	f.Add(wire.StartupPacket(3<<16, "user", "u", "options", `-c a=b\ c -cx=y`)[4:])
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
		if st.User == "" || st.Database == "" {
			t.Fatalf("accepted startup without user or database: %+v", st)
		}
		for _, s := range st.Settings {
			if s.Name == "" {
				t.Fatal("empty setting name accepted")
			}
		}
	})
}
