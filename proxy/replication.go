package proxy

// Replication connections (StartupMessage "replication=true" or
// "=database", as pg_basebackup, pg_receivewal and logical subscribers
// send): never pooled. Each gets a server connection of its own, opened
// with the same replication parameter and settings, with the login of the
// pool it would have used (pool.OpenDedicated), and relayed byte for byte
// both ways (CopyBoth, walsender commands) until either side leaves; then
// both are closed and the server is never reused, as in PgBouncer 1.23+.
// Session-like in any pool_mode. The client is registered like any other
// (cancel requests reach its walsender, SHOW CLIENTS and KILL see it), but
// neither its pool nor SHOW POOLS/SERVERS counts its server.

import (
	"errors"
	"io"
	"net"

	"github.com/jackc/pgx/v5/pgproto3"
	"go.uber.org/zap"

	"github.com/muxpg/mux/admin"
	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/cancelkey"
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/login"
	"github.com/muxpg/mux/pool"
	"github.com/muxpg/mux/session"
)

// replicationBufSize is each direction's relay buffer: WAL arrives in
// XLogData messages of up to 128 KiB (walsender's MAX_SEND_SIZE plus a
// header), base backups in CopyData of 32 KiB.
const replicationBufSize = 64 << 10

// isReplication reports whether st asks for a replication connection.
func isReplication(st *startup) bool { return st.Replication != login.NoReplication }

// loopRelayed reports whether a client of st is relayed by the session
// core (an event loop or the goroutine driver): not the admin console, not
// a replication connection.
func loopRelayed(st *startup) bool { return !admin.IsDatabase(st.Database) && !isReplication(st) }

// replicationLogin finishes the login of an authenticated replication
// client: it opens the client's own server and sends the welcome, with the
// server's parameters and a mux-issued cancel key.
func (c *clientConn) replicationLogin(s *snapshot, st *startup, db config.Database, known bool, u *login.User) (err error) {
	if admin.IsDatabase(st.Database) {
		return wire.Fatal(wire.CodeFeatureNotSupported, "the admin console does not take replication connections")
	}
	if !known {
		return wire.Fatal(wire.CodeInvalidCatalogName, "database %s does not exist", quote(st.Database))
	}
	if err := c.p.admin.loginAllowed(st.Database); err != nil {
		return err
	}
	c.core.Mode = session.Session // what SHOW CLIENTS and the drain see
	key, err := c.p.register(c, st.ProtocolMinor())
	if err != nil {
		return err
	}
	cfg := c.p.poolConfig(s, db, st.User, u)
	if key := c.passThroughKey(db, u); key != nil {
		cfg.Target.ClientKey = key
	}
	ctx, cancel := c.waitContext()
	defer cancel()
	srv, err := pool.OpenDedicated(ctx, cfg, replicationParams(st), c.p.log.Named("replication"))
	if err != nil {
		return c.poolError(err)
	}
	c.mu.Lock()
	c.server = srv
	c.mu.Unlock()
	defer func() {
		if err != nil {
			c.dropReplicationServer()
		}
	}()
	out := wire.AppendMessage(nil, &pgproto3.AuthenticationOk{})
	for name, v := range srv.Startup {
		out = wire.AppendMessage(out, &pgproto3.ParameterStatus{Name: name, Value: v})
	}
	out = cancelkey.AppendBackendKeyData(out, key)
	out = wire.AppendReadyForQuery(out, 'I')
	return c.write(out)
}

// replicationParams is what the server's StartupMessage adds to the
// pool's login: the replication kind and every setting the client sent,
// unfiltered (ignore_startup_parameters is for pooled servers; a logical
// subscriber's extra_float_digits must reach its walsender).
func replicationParams(st *startup) map[string]string {
	params := make(map[string]string, len(st.Settings)+1)
	for _, s := range st.Settings {
		params[s.Name] = s.Value
	}
	params["replication"] = st.Replication.StartupValue()
	return params
}

// dropReplicationServer closes the client's dedicated server, if any.
func (c *clientConn) dropReplicationServer() {
	c.mu.Lock()
	srv := c.server
	c.server = nil
	c.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

// startReplication relays a logged-in replication client on a goroutine of
// its own; accepted is the connection as accepted, for connDone.
func (c *clientConn) startReplication(accepted net.Conn, logOn bool, kind login.Replication) {
	c.logLogin(logOn, zap.Stringer("replication", kind))
	go c.serveReplication(accepted)
}

// serveReplication relays until either side leaves, then ends the session:
// both connections closed, the client unregistered.
func (c *clientConn) serveReplication(accepted net.Conn) {
	c.mu.Lock()
	srv := c.server
	c.mu.Unlock()
	toClient := make(chan error, 1)
	go func() {
		err := c.replicateToClient(srv)
		c.closeReplication(srv)
		toClient <- err
	}()
	errServer := c.replicateToServer(srv)
	c.closeReplication(srv)
	errClient := <-toClient
	c.dropReplicationServer()
	c.mu.Lock()
	c.gone = true
	c.mu.Unlock()
	c.logDisconnect(replicationEnd(errServer, errClient), "")
	c.p.unregister(c)
	c.p.connDone(accepted)
}

// closeReplication closes both sides, which ends the other direction's
// relay.
func (c *clientConn) closeReplication(srv *pool.Server) {
	srv.Close()
	_ = c.conn.Close()
}

// replicateToServer copies the client's bytes to its server until the
// client leaves (io.EOF) or either connection fails.
func (c *clientConn) replicateToServer(srv *pool.Server) error {
	buf := make([]byte, replicationBufSize)
	_, err := io.CopyBuffer(srv.Conn(), c.conn, buf)
	if err == nil {
		err = io.EOF
	}
	return err
}

// replicateToClient copies the server's bytes to the client until the
// server leaves or either connection fails. Writes go through writeTimed,
// so that an error mux sends the client (KILL, shutdown) never lands
// inside a message, and a client that stops reading is dropped after
// client_write_timeout, as any other.
func (c *clientConn) replicateToClient(srv *pool.Server) error {
	buf := make([]byte, replicationBufSize)
	conn := srv.Conn()
	for {
		n, err := conn.Read(buf)
		if n > 0 {
			if werr := c.writeTimed(buf[:n]); werr != nil {
				return werr
			}
		}
		if err != nil {
			return err
		}
	}
}

// replicationEnd words why a replication session ended for the log: the
// first side to go, as the other only saw its connection closed by mux.
func replicationEnd(errServer, errClient error) string {
	switch {
	case errors.Is(errServer, io.EOF):
		return "client closed the replication connection"
	case errors.Is(errClient, io.EOF):
		return "server closed the replication connection"
	case errServer != nil && !errors.Is(errServer, net.ErrClosed):
		return errServer.Error()
	case errClient != nil && !errors.Is(errClient, net.ErrClosed):
		return errClient.Error()
	}
	return reasonClosedByMux
}
