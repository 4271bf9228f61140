package proxy

import (
	"encoding/binary"
	"io"
	"net"

	"go.uber.org/zap"

	"github.com/muxpg/mux/internal/cancelkey"
	"github.com/muxpg/mux/internal/wire"
)

// cancelKey is the part of a mux-issued cancel key (package cancelkey) a
// session keeps: the process ID and the secret's first four bytes, all of
// a 3.0 secret. A longer secret is kept whole in Proxy.longKeys, so the
// 3.2 protocol costs clientConn nothing.
type cancelKey struct {
	pid    uint32
	secret uint32
}

// cancel forwards a client's CancelRequest to the server that client is
// using now, and drops it if it is using none. The server stays out of the
// pool until Postgres has handled the request, so a late cancel can never
// reach the server's next client. A key another instance of the fleet
// issued goes to that instance (fleet.go).
func (p *Proxy) cancel(k cancelkey.Key) {
	if owner := p.instance.Owner(k); owner != p.instance {
		p.forwardCancel(owner, k)
		return
	}
	c := p.lookupKey(k)
	if c == nil {
		if p.forwardToPredecessor(k) {
			return // a client the previous process kept (handover.go)
		}
		p.log.Debug("cancel request for unknown key dropped")
		return
	}
	p.cancelClient(c)
}

// cancelClient cancels what client c is running now on its server, if
// anything.
func (p *Proxy) cancelClient(c *clientConn) {
	c.mu.Lock()
	s := c.server
	if s != nil {
		s.BeginCancel()
	}
	c.mu.Unlock()
	if s == nil {
		if ce := c.logger().Check(zap.DebugLevel, "cancel request dropped: client holds no server"); ce != nil {
			ce.Write()
		}
		return
	}
	defer s.EndCancel()
	network, addr := s.Addr()
	// cancel_wait_timeout bounds the forward, and so how long the
	// cancelled server is held back from the pool.
	deadline := p.cancelDeadline()
	d := net.Dialer{Deadline: deadline}
	conn, err := d.Dial(network, addr)
	if err != nil {
		c.logger().Warn("forwarding cancel request failed", zap.Error(err))
		return
	}
	defer conn.Close()
	_ = conn.SetDeadline(deadline)
	// Over TLS like the server's own connection (server_tls_sslmode).
	host, _, _ := net.SplitHostPort(addr)
	if conn, err = p.snapshot().serverTLS.StartTLS(conn, network, host); err != nil {
		c.logger().Warn("forwarding cancel request failed", zap.Error(err))
		return
	}
	msg := make([]byte, 12, 12+len(s.KeySecret))
	binary.BigEndian.PutUint32(msg[4:8], wire.CancelRequestCode)
	binary.BigEndian.PutUint32(msg[8:12], s.KeyPID)
	msg = append(msg, s.KeySecret...)
	binary.BigEndian.PutUint32(msg[0:4], uint32(len(msg)))
	if _, err := conn.Write(msg); err != nil {
		c.logger().Warn("forwarding cancel request failed", zap.Error(err))
		return
	}
	// Postgres closes the connection once it has signalled the backend.
	if _, err := io.Copy(io.Discard, conn); err != nil {
		c.logger().Warn("cancel request given up (cancel_wait_timeout)", zap.Uint64("server_id", s.ID), zap.Error(err))
		return
	}
	c.logger().Info("cancel request forwarded", zap.Uint64("server_id", s.ID))
}
