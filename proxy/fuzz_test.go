package proxy

import (
	"bytes"
	"errors"
	"net"
	"strings"
	"testing"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/session"
)

// FuzzFraming drives the production read loop (relay: fill and process)
// with arbitrary client bytes delivered in arbitrary pieces. process
// serves session mode only: every transaction- and statement-mode client
// is tracked (processTracked; the session package's FuzzTrackedMessages
// and FuzzPassTrackedMessages drive that framing), so the corpus's mode
// flag is kept for its entries and ignored. What reaches the server must
// be exactly the client's bytes up to the first message mux refuses or
// Terminate; a refusal must be an 08P01 error; and the loop must not
// allocate for a length over max_message_size.
func FuzzFraming(f *testing.F) {
	seed := append(msg('Q', "SELECT 1\x00"), msg('P', "\x00SELECT $1\x00\x00\x00")...)
	seed = append(seed, msg('S', "")...)
	f.Add(seed, []byte{3, 7, 1}, false)
	f.Add(append(msg('d', strings.Repeat("x", 300)), msg('c', "")...), []byte{200}, true)
	f.Add(append(msg('Q', "LISTEN a\x00"), 'X', 0, 0, 0, 4), []byte{}, false)
	f.Add([]byte{'Q', 0x40, 0, 0, 0}, []byte{1}, true)
	f.Add([]byte{'Z', 0, 0, 0, 4}, []byte{}, true)
	f.Fuzz(func(t *testing.T, in, cuts []byte, _ bool) {
		const maxMsg = 1 << 12
		mode := session.Session
		// The model: which prefix of in must reach the server, and how many
		// replies it asks for.
		end, syncs, refused := 0, 0, false
		for pos := 0; len(in)-pos >= wire.HeaderLen; {
			typ, l := wire.Header(in[pos:])
			if l < 4 || l > maxMsg || typ == 'X' || !strings.ContainsRune("QSFPBEDCHdcf", rune(typ)) {
				refused = typ != 'X' || l < 4 || l > maxMsg
				break
			}
			whole := len(in)-pos >= 1+l
			if typ == 'Q' || typ == 'S' || typ == 'F' {
				syncs++
			}
			if !whole {
				end = len(in)
				break
			}
			pos += 1 + l
			end = pos
		}

		px := &Proxy{}
		px.snap.Store(&snapshot{cfg: config.Default()})
		cli, srv := net.Pipe()
		c := &clientConn{p: px, conn: srv, core: session.Core{Mode: mode}, lim: session.Limits{MaxMessage: maxMsg}}
		var got []byte
		gotSyncs := 0
		c.sink = func(data []byte, b session.Run) error {
			got = append(got, data...)
			gotSyncs += b.Syncs
			return nil
		}
		go func() {
			rest := in
			for i := 0; len(rest) > 0; i++ {
				n := len(rest)
				if i < len(cuts) && int(cuts[i]) > 0 && int(cuts[i]) < n {
					n = int(cuts[i])
				}
				if _, err := cli.Write(rest[:n]); err != nil {
					return
				}
				rest = rest[n:]
			}
			cli.Close()
		}()
		err := c.relay()
		srv.Close()
		if c.in.bp != nil {
			if len(*c.in.bp) > 2*maxMsg+wire.SmallBufSize {
				t.Fatalf("input buffer grew to %d bytes with max_message_size %d", len(*c.in.bp), maxMsg)
			}
		}
		var we *wire.Error
		switch {
		case refused:
			if !errors.As(err, &we) || we.Code != wire.CodeProtocolViolation {
				t.Fatalf("refused input ended with %v, want 08P01", err)
			}
		case errors.As(err, &we):
			t.Fatalf("acceptable input refused: %v", err)
		}
		if !bytes.Equal(got, in[:end]) {
			t.Fatalf("server got %q, want %q", got, in[:end])
		}
		if gotSyncs != syncs {
			t.Fatalf("counted %d replies owed, want %d", gotSyncs, syncs)
		}
	})
}
