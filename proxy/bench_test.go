package proxy

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/fakepg"
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/session"
	"github.com/muxpg/mux/sqllex"
)

// The relay benchmarks run real sockets: a client on loopback, mux, and a
// scripted backend (internal/fakepg) that answers at once, so what is
// measured is the proxy's own cost per message. The floor is a plain
// io.Copy relay both ways with no pooling at all.

// benchProxy starts mux in front of a fake backend and returns its address.
func benchProxy(tb testing.TB, mode string, fake *fakepg.Server) (string, func()) {
	tb.Helper()
	cfg, err := config.Parse([]byte(fmt.Sprintf(`
listen = ["127.0.0.1:0"]
auth_type = "trust"
pool_mode = %q
default_pool_size = 4
http_listen = ""
[databases.fake]
host = "127.0.0.1"
port = %d
[users.bench]
password = "unused"
`, mode, fake.Port())))
	if err != nil {
		tb.Fatal(err)
	}
	p, err := New(resolve(tb, cfg), zap.NewNop())
	if err != nil {
		tb.Fatal(err)
	}
	lns, err := p.Listen()
	if err != nil {
		tb.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Serve(lns[0]) }()
	return lns[0].Addr().String(), func() {
		_ = p.Shutdown(expiredContext())
		<-done
	}
}

// floorRelay is io.Copy both ways, one backend connection per client.
func floorRelay(tb testing.TB, fake *fakepg.Server) (string, func()) {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", fake.Port()))
			if err != nil {
				c.Close()
				continue
			}
			wg.Add(2)
			go func() { defer wg.Done(); io.Copy(s, c); s.Close() }()
			go func() { defer wg.Done(); io.Copy(c, s); c.Close() }()
		}
	}()
	return ln.Addr().String(), func() { ln.Close(); wg.Wait() }
}

// benchClient is a logged-in client that replays one request and reads
// its fixed-size reply, allocating nothing per round trip.
type benchClient struct {
	conn  net.Conn
	req   []byte
	reply []byte
}

func newBenchClient(tb testing.TB, addr string, setup, req []byte) *benchClient {
	tb.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := conn.Write(wire.StartupPacket(3<<16, "user", "bench", "database", "fake")); err != nil {
		tb.Fatal(err)
	}
	readUntilReady(tb, conn)
	if setup != nil {
		if _, err := conn.Write(setup); err != nil {
			tb.Fatal(err)
		}
		readUntilReady(tb, conn)
	}
	// Learn the reply's size from one round trip.
	if _, err := conn.Write(req); err != nil {
		tb.Fatal(err)
	}
	n := len(readUntilReady(tb, conn))
	return &benchClient{conn: conn, req: req, reply: make([]byte, n)}
}

func readUntilReady(tb testing.TB, conn net.Conn) []byte {
	tb.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	defer conn.SetReadDeadline(time.Time{})
	var got []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := conn.Read(buf)
		got = append(got, buf[:n]...)
		if l := len(got); l >= 6 && got[l-6] == 'Z' && bytes.Equal(got[l-5:l-1], []byte{0, 0, 0, 5}) {
			return got
		}
		if err != nil {
			tb.Fatalf("reading reply: %v (got %q)", err, got)
		}
	}
}

func (c *benchClient) roundTrip() error {
	if _, err := c.conn.Write(c.req); err != nil {
		return err
	}
	_, err := io.ReadFull(c.conn, c.reply)
	return err
}

func msg(typ byte, body string) []byte {
	b := []byte{typ, 0, 0, 0, 0}
	b = append(b, body...)
	binary.BigEndian.PutUint32(b[1:5], uint32(len(b)-1))
	return b
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// workloads: name → (setup, request).
var workloads = []struct {
	name       string
	setup, req []byte
}{
	{"simple", nil, msg('Q', "SELECT 1\x00")},
	{"extended", nil, cat(msg('P', "\x00SELECT 1\x00\x00\x00"), msg('B', "\x00\x00\x00\x00\x00\x00\x00\x00"),
		msg('E', "\x00\x00\x00\x00\x00"), msg('S', ""))},
	{"prepared", cat(msg('P', "S_1\x00SELECT $1::int\x00\x00\x00"), msg('S', "")),
		cat(msg('B', "\x00S_1\x00\x00\x00\x00\x01\x00\x00\x00\x011\x00\x00"), msg('E', "\x00\x00\x00\x00\x00"), msg('S', ""))},
	{"large-16KiB", nil, msg('Q', "SELECT '"+strings.Repeat("x", 16<<10)+"'\x00")},
}

func BenchmarkRelay(b *testing.B) {
	fake, err := fakepg.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer fake.Close()
	relays := []struct {
		name  string
		start func(testing.TB, *fakepg.Server) (string, func())
	}{
		{"floor-iocopy", floorRelay},
		{"mux-transaction", func(tb testing.TB, f *fakepg.Server) (string, func()) { return benchProxy(tb, "transaction", f) }},
		{"mux-session", func(tb testing.TB, f *fakepg.Server) (string, func()) { return benchProxy(tb, "session", f) }},
	}
	for _, r := range relays {
		for _, w := range workloads {
			b.Run(r.name+"/"+w.name, func(b *testing.B) {
				addr, stop := r.start(b, fake)
				defer stop()
				c := newBenchClient(b, addr, w.setup, w.req)
				defer c.conn.Close()
				b.SetBytes(int64(len(w.req) + len(c.reply)))
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; i < b.N; i++ {
					if err := c.roundTrip(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// TestRelayDoesNotAllocate fails if the steady-state relay starts
// allocating per round trip (in transaction mode, with parameter and
// prepared statement tracking on).
func TestRelayDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts are meaningless under -race (sync.Pool drops items); run without -race")
	}
	fake, err := fakepg.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer fake.Close()
	for _, mode := range []string{"transaction", "session"} {
		addr, stop := benchProxy(t, mode, fake)
		for _, w := range workloads {
			c := newBenchClient(t, addr, w.setup, w.req)
			for i := 0; i < 200; i++ { // warm the pools
				if err := c.roundTrip(); err != nil {
					t.Fatal(err)
				}
			}
			allocs := testing.AllocsPerRun(500, func() {
				if err := c.roundTrip(); err != nil {
					t.Fatal(err)
				}
			})
			t.Logf("%s/%s: %.2f allocs per round trip", mode, w.name, allocs)
			if allocs > 0.5 {
				t.Errorf("%s/%s: %.2f allocations per round trip, want 0", mode, w.name, allocs)
			}
			c.conn.Close()
		}
		stop()
	}
}

func expiredContext() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}

// BenchmarkStateFilter is what session-state tracking adds to an ordinary
// pgbench -S query: the byte filter over its text, and the lexer when a
// keyword it looks for is there (no query to the server, since nothing in
// it can change session state).
func BenchmarkStateFilter(b *testing.B) {
	opt := sqllex.Options{StandardConformingStrings: true}
	for _, q := range []string{
		"SELECT abalance FROM pgbench_accounts WHERE aid = 48213;",
		"UPDATE pgbench_accounts SET abalance = abalance + -2934 WHERE aid = 48213;",
	} {
		b.Run(strings.Fields(q)[0], func(b *testing.B) {
			sql := []byte(q)
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				if h := session.ScanState(sql, session.FindWords(sql), opt); h.May {
					b.Fatalf("%q flagged", q)
				}
			}
		})
	}
}
