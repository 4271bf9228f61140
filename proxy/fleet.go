package proxy

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"time"

	"go.uber.org/zap"

	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/cancelkey"
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
)

// A fleet is several mux instances behind one address. Each names itself
// in the cancel keys it issues (peer_id, package cancelkey); a
// CancelRequest whose key names another instance is forwarded to that
// peer, as PgBouncer's peering does, on the goroutine that read it (a
// connection of its own, like any CancelRequest, so no client waits on
// it). The peer answers by closing the connection once it has handled the
// request, so the sender's own close tells the client the cancel has
// gone as far as it can. A forward lowers the key's hop count; a key whose
// count is spent is dropped, so a misconfigured fleet cannot pass one
// round in a loop.

// peerSlots bounds the forwards in flight to each peer (its pool_size).
// mu guards slots and is never held while waiting for a slot or doing I/O.
type peerSlots struct {
	mu    sync.Mutex
	slots map[cancelkey.Instance]chan struct{}
}

// acquire takes a slot to peer id, whose pool_size is size, waiting until
// deadline; release gives it back. A reload that changes the size starts
// a fresh set of slots: forwards in flight finish on the old one.
func (ps *peerSlots) acquire(id cancelkey.Instance, size int, deadline time.Time) (release func(), ok bool) {
	ps.mu.Lock()
	ch := ps.slots[id]
	if ch == nil || cap(ch) != size {
		if ps.slots == nil {
			ps.slots = map[cancelkey.Instance]chan struct{}{}
		}
		ch = make(chan struct{}, size)
		ps.slots[id] = ch
	}
	ps.mu.Unlock()
	if deadline.IsZero() {
		ch <- struct{}{}
		return func() { <-ch }, true
	}
	t := time.NewTimer(time.Until(deadline))
	defer t.Stop()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, true
	case <-t.C:
		return nil, false
	}
}

// forwardCancel sends a CancelRequest for key k, which names instance
// owner, to that peer; it is dropped (with a debug log) when no peer of
// that id is configured or the key's hop count is spent.
func (p *Proxy) forwardCancel(owner cancelkey.Instance, k cancelkey.Key) {
	log := p.fleetLog.With(zap.Uint16("peer_id", uint16(owner)))
	s := p.snapshot()
	addr, ok := s.cfg.LookupPeer(int(owner))
	if !ok {
		debug(log, "cancel request for an unknown instance dropped")
		return
	}
	fk, ok := k.Forwarded()
	if !ok {
		debug(log, "cancel request dropped: hop count exhausted")
		return
	}
	// cancel_wait_timeout bounds a forward: the wait for a slot to the
	// peer, the dial (a DNS lookup included), TLS, the write, and the
	// peer's close. Zero: no limit.
	deadline := p.cancelDeadline()
	release, ok := p.peerSlots.acquire(owner, addr.PoolSize, deadline)
	if !ok {
		log.Warn("cancel request dropped: the peer's pool_size forwards are all in flight")
		return
	}
	defer release()
	err := sendCancelRequest(s.peerTLS, addr, fk.PID, fk.Secret, deadline)
	var dnsErr *net.DNSError
	switch {
	case errors.As(err, &dnsErr) && dnsErr.IsNotFound:
		// peers_dns names no such pod: an instance that no longer exists.
		debug(log, "cancel request for an instance that does not exist dropped", zap.String("peer", addr.Address))
	case err != nil:
		log.Warn("forwarding cancel request to peer failed", zap.String("peer", addr.Address), zap.Error(err))
	default:
		debug(log, "cancel request forwarded to peer", zap.String("peer", addr.Address), zap.Int("hops_left", fk.TTL()))
	}
}

// sendCancelRequest connects to addr (over TLS as t says), sends a
// CancelRequest for (pid, secret) and waits for the other end to close,
// which Postgres and mux do once they have handled it; all before
// deadline.
func sendCancelRequest(t *pool.TLS, addr config.PeerAddr, pid uint32, secret []byte, deadline time.Time) error {
	d := net.Dialer{Deadline: deadline}
	raw, err := d.Dial(addr.Network, addr.Address)
	if err != nil {
		return err
	}
	defer raw.Close()
	_ = raw.SetDeadline(deadline)
	conn, err := t.StartTLS(raw, addr.Network, addr.Host)
	if err != nil {
		return fmt.Errorf("tls: %w", err)
	}
	msg := make([]byte, 12, 12+len(secret))
	binary.BigEndian.PutUint32(msg[4:8], wire.CancelRequestCode)
	binary.BigEndian.PutUint32(msg[8:12], pid)
	msg = append(msg, secret...)
	binary.BigEndian.PutUint32(msg[0:4], uint32(len(msg)))
	if _, err := conn.Write(msg); err != nil {
		return err
	}
	_, err = io.Copy(io.Discard, conn)
	return err
}

// debug writes a debug message if debug logging is on, building no
// fields otherwise.
func debug(log *zap.Logger, msg string, fields ...zap.Field) {
	if ce := log.Check(zap.DebugLevel, msg); ce != nil {
		ce.Write(fields...)
	}
}
