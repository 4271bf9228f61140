package proxy

import "github.com/muxpg/mux/admin"

// Console returns the proxy as the admin console sees it, for readers
// that must show what SHOW POOLS and SHOW CLIENTS show (the status page).
func (p *Proxy) Console() admin.Target { return consoleTarget{p} }

// Totals sums the running totals of every pool that exists now: the
// counters SHOW STATS reads, without walking the clients. A dropped
// pool's totals leave the sum.
func (p *Proxy) Totals() PoolStats {
	var sum PoolStats
	p.poolMu.Lock()
	defer p.poolMu.Unlock()
	for _, st := range p.stats {
		s := st.snapshot()
		sum.Transactions += s.Transactions
		sum.Queries += s.Queries
		sum.BytesReceived += s.BytesReceived
		sum.BytesSent += s.BytesSent
		sum.TransactionTime += s.TransactionTime
		sum.QueryTime += s.QueryTime
		sum.WaitTime += s.WaitTime
		sum.Waits += s.Waits
		sum.Errors += s.Errors
	}
	return sum
}
