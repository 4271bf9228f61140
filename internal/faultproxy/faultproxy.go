// Package faultproxy is a TCP forwarder for tests that can delay traffic,
// reset connections and black-hole them, as Toxiproxy does: it sits
// between mux and a Postgres server so that tests can break the network
// without touching the server.
package faultproxy

import (
	"io"
	"net"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Proxy forwards connections accepted on its address to a target. All
// methods are safe for concurrent use.
type Proxy struct {
	l      net.Listener
	target string

	delay     atomic.Int64 // nanoseconds added before each forwarded chunk
	blackHole atomic.Bool  // drop every byte; accept but never connect

	mu     sync.Mutex // guards conns and closed
	conns  map[*link]struct{}
	closed bool
	wg     sync.WaitGroup
}

// link is one client connection and, unless black-holed, its connection
// to the target.
type link struct {
	client  net.Conn
	server  atomic.Pointer[net.Conn] // nil while black-holed at accept
	dropped atomic.Bool
}

// Start listens on 127.0.0.1 at a free port and forwards to target
// (host:port).
func Start(target string) (*Proxy, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{l: l, target: target, conns: map[*link]struct{}{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Host and Port are where clients connect.
func (p *Proxy) Host() string { return "127.0.0.1" }

// Port is the proxy's listening port.
func (p *Proxy) Port() int { return p.l.Addr().(*net.TCPAddr).Port }

// Addr is host:port of the proxy.
func (p *Proxy) Addr() string { return net.JoinHostPort(p.Host(), strconv.Itoa(p.Port())) }

// SetDelay delays every forwarded chunk, both ways, by d (0: none).
func (p *Proxy) SetDelay(d time.Duration) { p.delay.Store(int64(d)) }

// BlackHole drops every byte in both directions while on, as a network
// partition does: connections stay open, nothing arrives, new connections
// are accepted but never reach the target. Turning it off closes the
// connections that lost bytes (their streams are corrupt) and forwards
// again.
func (p *Proxy) BlackHole(on bool) {
	p.blackHole.Store(on)
	if on {
		return
	}
	p.mu.Lock()
	var lost []*link
	for c := range p.conns {
		if c.dropped.Load() || c.server.Load() == nil {
			lost = append(lost, c)
		}
	}
	p.mu.Unlock()
	for _, c := range lost {
		c.close()
	}
}

// Reset closes every open connection with a TCP reset.
func (p *Proxy) Reset() {
	p.mu.Lock()
	all := make([]*link, 0, len(p.conns))
	for c := range p.conns {
		all = append(all, c)
	}
	p.mu.Unlock()
	for _, c := range all {
		if tc, ok := c.client.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
		c.close()
	}
}

// Close stops listening and closes every connection.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.l.Close()
	p.Reset()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		lk := &link{client: c}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			c.Close()
			return
		}
		p.conns[lk] = struct{}{}
		p.wg.Add(1)
		p.mu.Unlock()
		go p.serve(lk)
	}
}

// serve connects lk to the target (unless black-holed) and forwards both
// ways until either side ends.
func (p *Proxy) serve(lk *link) {
	defer p.wg.Done()
	defer p.forget(lk)
	if p.blackHole.Load() {
		p.drain(lk.client, lk) // until the client leaves or the hole is lifted
		return
	}
	s, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		lk.client.Close()
		return
	}
	lk.server.Store(&s)
	done := make(chan struct{}, 2)
	go func() { p.pipe(s, lk.client, lk); done <- struct{}{} }()
	p.pipe(lk.client, s, lk)
	lk.close()
	<-done
}

// pipe copies src to dst, dropping what arrives while black-holed.
func (p *Proxy) pipe(dst, src net.Conn, lk *link) {
	buf := make([]byte, 32<<10)
	for {
		n, err := src.Read(buf)
		if n > 0 {
			if d := time.Duration(p.delay.Load()); d > 0 {
				time.Sleep(d)
			}
			if p.blackHole.Load() {
				lk.dropped.Store(true)
			} else if _, werr := dst.Write(buf[:n]); werr != nil {
				lk.close()
				return
			}
		}
		if err != nil {
			lk.close()
			return
		}
	}
}

// drain reads and drops c's bytes until c ends.
func (p *Proxy) drain(c net.Conn, lk *link) {
	_, _ = io.Copy(io.Discard, c)
	lk.close()
}

func (p *Proxy) forget(lk *link) {
	p.mu.Lock()
	delete(p.conns, lk)
	p.mu.Unlock()
}

func (lk *link) close() {
	lk.client.Close()
	if s := lk.server.Load(); s != nil {
		(*s).Close()
	}
}
