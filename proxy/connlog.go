package proxy

import (
	"errors"
	"io"
	"net"
	"os"
	"time"

	"github.com/muxpg/mux/internal/wire"
	"go.uber.org/zap"
)

// Logging of client logins and disconnects (log_connections,
// log_disconnections): one Info line each, as PgBouncer's "login attempt"
// and "closing because" lines. Never on the relay path: once per session.

// Reasons a session ends, as PgBouncer words the common ones.
const (
	reasonClientClose = "client close request"
	reasonClientEOF   = "client unexpected eof"
	reasonClosedByMux = "connection closed by mux"
)

// logLogin logs a client that has logged in, if log_connections is on.
func (c *clientConn) logLogin(on bool, fields ...zap.Field) {
	if !on {
		if ce := c.p.log.Check(zap.DebugLevel, "client logged in"); ce != nil {
			ce.Write(append(fields, zap.Uint64("client_id", c.id))...)
		}
		return
	}
	fields = append(fields, zap.Bool("tls", c.tls))
	c.logger().Info("client logged in", fields...)
}

// sendEndError sends the client the error that ends its session, if mux
// can phrase one, and returns why the session ended and the SQLSTATE sent
// ("" if none).
func (c *clientConn) sendEndError(err error) (reason, sqlstate string) {
	var we *wire.Error
	switch {
	case err == nil, errors.Is(err, errTerminate):
		return reasonClientClose, ""
	case errors.Is(err, io.EOF):
		return reasonClientEOF, ""
	case errors.Is(err, net.ErrClosed):
		return reasonClosedByMux, ""
	case errors.As(err, &we):
		c.sendError(we)
		return we.Message, we.Code
	case errors.Is(err, os.ErrDeadlineExceeded):
		c.mu.Lock()
		inTx := c.inTransaction()
		c.mu.Unlock()
		we = wire.Fatal(wire.CodeIdleSessionTimeout, "terminating connection due to idle-session timeout (client_idle_timeout)")
		if inTx {
			we = wire.Fatal(wire.CodeIdleInTransactionTimeout, "terminating connection due to idle-in-transaction timeout (idle_transaction_timeout)")
		}
		c.sendError(we)
		return we.Message, we.Code
	default:
		return err.Error(), ""
	}
}

// logDisconnect logs why a client's session ended, if log_disconnections
// is on (else at debug level).
func (c *clientConn) logDisconnect(reason, sqlstate string) {
	fields := []zap.Field{zap.String("reason", reason), zap.Duration("age", time.Since(c.connected).Round(time.Millisecond))}
	if sqlstate != "" {
		fields = append(fields, zap.String("sqlstate", sqlstate))
	}
	if c.p.config().LogDisconnections {
		c.logger().Info("client disconnected", fields...)
	} else if ce := c.p.log.Check(zap.DebugLevel, "client disconnected"); ce != nil {
		ce.Write(append(fields, zap.Uint64("client_id", c.id))...)
	}
}
