// Package balancer is a small TCP load balancer for tests: it hands each
// new connection to the next of its backends in turn, as a Kubernetes
// Service or a TCP load balancer in front of a fleet of mux instances does.
package balancer

import (
	"io"
	"net"
	"sync"
	"time"
)

// Balancer accepts on a loopback port and relays each connection to one
// backend, taking the enabled backends in turn. Safe for concurrent use.
type Balancer struct {
	ln net.Listener
	wg sync.WaitGroup

	mu       sync.Mutex // guards the fields below, never held across I/O
	backends []string
	enabled  []bool
	next     int
	conns    map[net.Conn]struct{}
	counts   []int
}

// New starts a balancer in front of backends (host:port), all enabled.
func New(backends ...string) (*Balancer, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := &Balancer{ln: ln, backends: backends, enabled: make([]bool, len(backends)),
		counts: make([]int, len(backends)), conns: map[net.Conn]struct{}{}}
	for i := range b.enabled {
		b.enabled[i] = true
	}
	b.wg.Add(1)
	go b.accept()
	return b, nil
}

// Addr returns the address clients connect to.
func (b *Balancer) Addr() *net.TCPAddr { return b.ln.Addr().(*net.TCPAddr) }

// SetEnabled takes backend i out of the rotation (as a Service drops a
// terminating or unready pod's endpoint) or puts it back. Connections
// already relayed to it are not touched.
func (b *Balancer) SetEnabled(i int, on bool) {
	b.mu.Lock()
	b.enabled[i] = on
	b.mu.Unlock()
}

// Counts returns how many connections each backend has been given.
func (b *Balancer) Counts() []int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]int(nil), b.counts...)
}

// pick returns the next enabled backend, or "" if none is.
func (b *Balancer) pick() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for range b.backends {
		i := b.next
		b.next = (b.next + 1) % len(b.backends)
		if b.enabled[i] {
			b.counts[i]++
			return b.backends[i]
		}
	}
	return ""
}

func (b *Balancer) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			return
		}
		b.wg.Add(1)
		go b.relay(c)
	}
}

// track adds c to the open connections (or removes it); it reports false
// once Close has begun.
func (b *Balancer) track(c net.Conn, add bool) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if !add {
		delete(b.conns, c)
		return true
	}
	if b.conns == nil {
		return false
	}
	b.conns[c] = struct{}{}
	return true
}

func (b *Balancer) relay(client net.Conn) {
	defer b.wg.Done()
	defer client.Close()
	addr := b.pick()
	if addr == "" {
		return
	}
	server, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return
	}
	defer server.Close()
	if !b.track(client, true) || !b.track(server, true) {
		return
	}
	defer b.track(client, false)
	defer b.track(server, false)
	done := make(chan struct{})
	go func() {
		pipe(server, client)
		close(done)
	}()
	pipe(client, server)
	<-done
}

// pipe copies src to dst, then half-closes dst so the other side sees the
// end, as a TCP proxy passes a FIN on.
func pipe(dst, src net.Conn) {
	_, _ = io.Copy(dst, src)
	if tc, ok := dst.(*net.TCPConn); ok {
		_ = tc.CloseWrite()
	} else {
		dst.Close()
	}
}

// Close stops accepting, closes every relayed connection and waits for
// the relays to end.
func (b *Balancer) Close() error {
	err := b.ln.Close()
	b.mu.Lock()
	conns := b.conns
	b.conns = nil
	b.mu.Unlock()
	for c := range conns {
		c.Close()
	}
	b.wg.Wait()
	return err
}
