package proxy

import (
	"net"
	"runtime"
	"testing"
	"unsafe"

	"github.com/muxpg/mux/internal/fakepg"
)

// BenchmarkIdleClientMemory reports the Go memory (heap and stacks) one
// logged-in idle client costs mux, over 2,000 clients on a fake backend.
func BenchmarkIdleClientMemory(b *testing.B) {
	fake, err := fakepg.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer fake.Close()
	addr, stop := benchProxy(b, "transaction", fake)
	defer stop()
	const n = 2000
	var stack uint64
	mem := func() uint64 {
		runtime.GC()
		runtime.GC()
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		stack = ms.StackInuse
		return ms.HeapInuse + ms.StackInuse
	}
	for i := 0; i < b.N; i++ {
		before := mem()
		stackBefore := stack
		conns := make([]net.Conn, 0, n)
		for j := 0; j < n; j++ {
			c := newBenchClient(b, addr, nil, msg('Q', "SELECT 1\x00"))
			conns = append(conns, c.conn)
		}
		after := mem()
		b.ReportMetric(float64(after-before)/n, "bytes/idle-client")
		b.ReportMetric(float64(stack-stackBefore)/n, "stack-bytes/idle-client")
		for _, c := range conns {
			c.Close()
		}
	}
}

// A parked client costs its clientConn and little else, so the struct's
// size class is most of the idle-client budget. Go stores an 8-byte header
// in front of pointerful objects over 512 bytes: clientConn must stay
// within 888 bytes to be allocated from the 896-byte class rather than the
// 1,024-byte one (measured: 4.02 against 3.63 KiB RSS per idle client).
func TestClientConnFitsItsSizeClass(t *testing.T) {
	const class, header = 896, 8
	if size := unsafe.Sizeof(clientConn{}); size+header > class {
		t.Fatalf("clientConn is %d bytes: with the malloc header it no longer fits the %d-byte size class; "+
			"repack its fields (mind padding between small ones) or move rarely used state out", size, class)
	}
}
