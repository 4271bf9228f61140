package proxy

import (
	"context"
	"time"

	"go.uber.org/zap"

	"github.com/muxpg/mux/session"
)

// DrainMode is what a drain does with the clients still connected before
// its deadline; after it, every one is ended (Drain).
type DrainMode uint8

const (
	// WaitForClients keeps every client until it leaves (SIGTERM,
	// PgBouncer 1.23's "super safe shutdown"): mux never closes a client
	// by itself before the deadline.
	WaitForClients DrainMode = iota
	// CloseBetweenTransactions closes each transaction- and
	// statement-mode client, with FATAL 57P01, as soon as it holds no
	// server and owes no reply; a client that asks for a server again
	// (its next transaction) is refused the same way, so what it sent
	// never runs. A transaction under way finishes first. Session-mode and
	// pinned clients keep their server, so they stay until they leave.
	// SIGINT, PgBouncer 1.23's "safe shutdown".
	CloseBetweenTransactions
)

// drainTick is how often a drain looks for clients that have left or, in
// CloseBetweenTransactions, that are between transactions.
const drainTick = 20 * time.Millisecond

// waitForClients returns when no logged-in client is left or ctx ends,
// closing clients between transactions meanwhile if mode says so.
func (p *Proxy) waitForClients(ctx context.Context, mode DrainMode) {
	if mode == CloseBetweenTransactions {
		p.closeBetween.Store(true)
	}
	t := time.NewTicker(drainTick)
	defer t.Stop()
	var buf []*clientConn
	for p.loggedIn() > 0 && ctx.Err() == nil {
		if mode == CloseBetweenTransactions {
			buf = p.closeIdleClients(buf[:0])
		}
		select {
		case <-ctx.Done():
		case <-t.C:
		}
	}
}

// closeIdleClients ends every client claimIdle gives, telling it why
// first. buf is scratch space, returned for the next round.
func (p *Proxy) closeIdleClients(buf []*clientConn) []*clientConn {
	buf = p.loggedInClients(buf)
	n := 0
	for _, c := range buf {
		if !c.claimIdle() {
			continue
		}
		c.sendError(shutdownError())
		c.terminate()
		n++
	}
	if n > 0 {
		p.log.Info("drain: closed clients between transactions", zap.Int("clients", n), zap.Int("left", p.loggedIn()))
	}
	clear(buf)
	return buf
}

// claimIdle marks c gone if it is a transaction- or statement-mode client
// between transactions and not waiting for a server. Marked under c.mu,
// it can no longer take a server (adopt checks under the same lock), so
// nothing it sends after this runs.
func (c *clientConn) claimIdle() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.gone || c.waiting || c.core.Mode == session.Session || !c.betweenTransactions() {
		return false
	}
	c.gone = true
	return true
}

// refusesServer reports whether c may not take a server: it is gone
// (KILL, shutdown, claimIdle), or a drain closes transaction- and
// statement-mode clients between transactions. c.mu held.
func (c *clientConn) refusesServer() bool {
	return c.gone || c.core.Mode != session.Session && c.p.closeBetween.Load()
}
