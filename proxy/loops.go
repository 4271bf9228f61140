package proxy

import (
	"sync"

	"github.com/muxpg/mux/evloop"

	"go.uber.org/zap"

	"github.com/muxpg/mux/pool"
)

// loops are the proxy's event loops (workers), started with the first
// client that needs one.
type loops struct {
	mu      sync.Mutex
	started bool
	all     []*evloop.Loop
	next    uint32 // round robin, guarded by mu
}

// pickLoop returns the loop for a new client or server, or nil when mux
// relays with goroutines (workers = 0, or no event loops on this
// platform).
func (p *Proxy) pickLoop() *evloop.Loop {
	ls := &p.loops
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.startLocked(p)
	if len(ls.all) == 0 {
		return nil
	}
	l := ls.all[ls.next%uint32(len(ls.all))]
	ls.next++
	return l
}

// loopsOn reports whether mux relays with event loops (decided once, at
// the first client or pool: workers is read at start only).
func (p *Proxy) loopsOn() bool {
	ls := &p.loops
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.startLocked(p)
	return len(ls.all) > 0
}

// startLocked starts the loops the configuration asks for, once. ls.mu
// held.
func (ls *loops) startLocked(p *Proxy) {
	if !ls.started {
		ls.started = true
		n := p.config().Workers.N()
		if !evloop.Supported {
			n = 0
		}
		for i := 0; i < n; i++ {
			l, err := evloop.New(p.log.Named("loop"))
			if err != nil {
				p.log.Warn("event loop not started: relaying with goroutines", zap.Error(err))
				break
			}
			ls.all = append(ls.all, l)
		}
	}
}

// serverLoop picks the loop that reads a new server (pool.SetLoops).
func (p *Proxy) serverLoop() pool.Loop {
	if l := p.pickLoop(); l != nil {
		return l
	}
	return nil
}

// stopLoops ends the loops (Shutdown, once every pool has closed).
func (p *Proxy) stopLoops() {
	ls := &p.loops
	ls.mu.Lock()
	all := ls.all
	ls.all = nil
	ls.mu.Unlock()
	for _, l := range all {
		l.Stop()
	}
}
