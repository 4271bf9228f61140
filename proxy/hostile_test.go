package proxy

import (
	"context"
	"encoding/binary"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"
	"github.com/muxpg/mux/internal/wire"
)

// expectCloseWithoutReply checks that mux closes conn without sending
// anything.
func expectCloseWithoutReply(t *testing.T, conn net.Conn) {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	var b [64]byte
	n, err := conn.Read(b[:])
	if n != 0 || err == nil {
		t.Fatalf("got %q (%v), want the connection closed silently", b[:n], err)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		t.Fatal("mux kept the connection open")
	}
}

// Bytes sent after a CancelRequest are ignored and the connection closed.
func TestHostileBytesAfterCancelRequest(t *testing.T) {
	m := startMux(t, "")
	stop := background(t, m)
	defer stop()
	conn, err := net.Dial("tcp", net.JoinHostPort(m.host, itoa(m.port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	msg := make([]byte, 16)
	binary.BigEndian.PutUint32(msg[0:4], 16)
	binary.BigEndian.PutUint32(msg[4:8], 80877102)
	binary.BigEndian.PutUint32(msg[8:12], 12345)
	binary.BigEndian.PutUint32(msg[12:16], 67890)
	if _, err := conn.Write(append(msg, []byte("garbage after the cancel")...)); err != nil {
		t.Fatal(err)
	}
	expectCloseWithoutReply(t, conn)
}

// A client that sends its startup one byte per second is cut at
// client_login_timeout.
func TestHostileSlowLogin(t *testing.T) {
	m := startMux(t, `client_login_timeout = "2s"`)
	stop := background(t, m)
	defer stop()
	conn, err := net.Dial("tcp", net.JoinHostPort(m.host, itoa(m.port)))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	pkt := wire.StartupPacket(3<<16, "user", "muxuser", "database", "muxtest")
	start := time.Now()
	for _, b := range pkt {
		if _, err := conn.Write([]byte{b}); err != nil {
			break // mux gave up on us
		}
		if time.Since(start) > 6*time.Second {
			t.Fatal("mux still reading a slow login after 6s")
		}
		time.Sleep(250 * time.Millisecond)
	}
	_ = conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	fe := pgproto3.NewFrontend(conn, conn)
	msg, err := fe.Receive()
	if err != nil {
		return // closed: fine, the error may not have fitted in before
	}
	if er, ok := msg.(*pgproto3.ErrorResponse); !ok || er.Code != "08P01" {
		t.Fatalf("got %#v, want ErrorResponse 08P01", msg)
	}
}

// Clients vanishing mid-COPY and mid-pipeline leave the (single) server
// clean for the next client.
func TestHostileVanishMidCopyAndPipeline(t *testing.T) {
	m := startMux(t, "default_pool_size = 1")
	ctx := context.Background()
	setup := m.connect(t)
	if _, err := setup.Exec(ctx, "CREATE TABLE IF NOT EXISTS hostile (v int); TRUNCATE hostile"); err != nil {
		t.Fatal(err)
	}
	// Mid-COPY.
	raw := dialRaw(t, m, "muxuser", "muxpass", "muxtest")
	raw.fe.Send(&pgproto3.Query{String: "COPY hostile FROM STDIN"})
	_ = raw.fe.Flush()
	raw.expect(t, "CopyInResponse")
	raw.fe.Send(&pgproto3.CopyData{Data: []byte("1\n2\n")})
	_ = raw.fe.Flush()
	raw.conn.Close()
	// Mid-pipeline: an INSERT executed, no Sync.
	raw = dialRaw(t, m, "muxuser", "muxpass", "muxtest")
	raw.fe.Send(&pgproto3.Parse{Query: "INSERT INTO hostile VALUES (3)"})
	raw.fe.Send(&pgproto3.Bind{})
	raw.fe.Send(&pgproto3.Execute{})
	raw.fe.Send(&pgproto3.Flush{})
	_ = raw.fe.Flush()
	raw.expect(t, "ParseComplete", "BindComplete", "CommandComplete")
	raw.conn.Close()
	var inTx bool
	var n int
	if err := setup.QueryRow(ctx, "SELECT pg_current_xact_id_if_assigned() IS NOT NULL, (SELECT count(*) FROM hostile)").Scan(&inTx, &n); err != nil {
		t.Fatal(err)
	}
	if inTx || n != 0 {
		t.Fatalf("next client inherited state: in transaction %v, rows %d", inTx, n)
	}
}

// 5,000 connections opened and dropped in a burst: mux carries on and
// lets go of them all.
func TestHostileConnectionBurst(t *testing.T) {
	m := startMux(t, "max_client_conn = 6000")
	stop := background(t, m)
	defer stop()
	before := runtime.NumGoroutine()
	var wg sync.WaitGroup
	sem := make(chan struct{}, 200)
	addr := net.JoinHostPort(m.host, itoa(m.port))
	for i := 0; i < 5000; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func(i int) {
			defer wg.Done()
			defer func() { <-sem }()
			c, err := net.DialTimeout("tcp", addr, 5*time.Second)
			if err != nil {
				return
			}
			if i%2 == 0 {
				_, _ = c.Write(wire.StartupPacket(3<<16, "user", "muxuser")[:7])
			}
			c.Close()
		}(i)
	}
	wg.Wait()
	waitFor(t, "mux to drop the burst", 20*time.Second, func() bool { return m.p.NumClients() <= 1 })
	waitFor(t, "goroutines to settle", 20*time.Second, func() bool { return runtime.NumGoroutine() <= before+10 })
	conn := m.connect(t)
	if got := queryString(t, conn, "SELECT 'fine'::text"); got != "fine" {
		t.Fatal(got)
	}
}
