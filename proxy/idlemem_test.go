package proxy

import (
	"net"
	"runtime"
	"testing"

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
