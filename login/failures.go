package login

import (
	"net"
	"sync"
	"time"
)

// Repeated failed logins from one address are slowed down: after
// failureFreeTries failures within failureWindow, each further login from
// that address waits failureStep more (up to failureMaxDelay) before it is
// answered. Successful logins are not delayed by others' failures.
const (
	failureWindow    = time.Minute
	failureFreeTries = 5
	failureStep      = 200 * time.Millisecond
	failureMaxDelay  = 3 * time.Second
	maxTrackedAddrs  = 10000
)

// Failures counts failed logins by client address. Its zero value is
// ready to use.
type Failures struct {
	mu     sync.Mutex
	byAddr map[string]*failureCount
}

type failureCount struct {
	n     int
	since time.Time
}

func hostOf(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.IP.String()
	}
	return "local"
}

// Note counts a failed login from addr and sleeps the penalty.
func (f *Failures) Note(addr net.Addr) {
	delay := f.add(hostOf(addr))
	if delay > 0 {
		time.Sleep(delay)
	}
}

func (f *Failures) add(host string) time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now()
	if f.byAddr == nil {
		f.byAddr = map[string]*failureCount{}
	}
	fc := f.byAddr[host]
	if fc == nil || now.Sub(fc.since) > failureWindow {
		if len(f.byAddr) >= maxTrackedAddrs {
			for k, v := range f.byAddr {
				if now.Sub(v.since) > failureWindow {
					delete(f.byAddr, k)
				}
			}
		}
		fc = &failureCount{since: now}
		f.byAddr[host] = fc
	}
	fc.n++
	if fc.n <= failureFreeTries {
		return 0
	}
	return min(time.Duration(fc.n-failureFreeTries)*failureStep, failureMaxDelay)
}
