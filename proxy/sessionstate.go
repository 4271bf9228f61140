package proxy

import (
	"context"
	"sort"
	"strings"

	"go.uber.org/zap"

	"github.com/muxpg/mux/pool"
	"github.com/muxpg/mux/session"
)

// Session state in transaction and statement mode.
//
// SQL text cannot show every change to a session (set_config inside a
// function, a value passed as a Bind parameter, a temporary table created
// in plpgsql), so mux asks the server. A cheap lexer filter marks a
// transaction that may have changed state (SET, RESET, DISCARD, DO, CREATE,
// DECLARE, LISTEN, LOAD, PREPARE, CALL, set_config, advisory lock
// functions, or a ParameterStatus from the server); when such a transaction
// ends, before the server goes back to the pool, mux reads the session's
// authoritative state in one query: settings whose source is "session"
// (carried to the client's next server), and session advisory locks,
// temporary relations, WITH HOLD cursors, SQL prepared statements and
// LISTEN channels (which cannot be carried: the client is pinned to its
// server while any exist, per pin_policy). Ordinary transactions never pay
// for the query.

// stateQuery reads what mux carries or pins for. One row per session
// setting ("s", name, value) and one count row per kind of pinned state.
const stateQuery = `SELECT 's', name, setting FROM pg_catalog.pg_settings WHERE source = 'session'
UNION ALL SELECT 'advisory lock', count(*)::text, '' FROM pg_catalog.pg_locks WHERE locktype = 'advisory' AND pid = pg_catalog.pg_backend_pid()
UNION ALL SELECT 'temporary table', count(*)::text, '' FROM pg_catalog.pg_class WHERE relnamespace = pg_catalog.pg_my_temp_schema()
UNION ALL SELECT 'WITH HOLD cursor', count(*)::text, '' FROM pg_catalog.pg_cursors WHERE is_holdable
UNION ALL SELECT 'SQL PREPARE', count(*)::text, '' FROM pg_catalog.pg_prepared_statements WHERE from_sql
UNION ALL SELECT 'LISTEN', count(*)::text, '' FROM pg_catalog.pg_listening_channels()`

// watchCustom adds custom setting names to those read at the next state
// check. c.mu held.
func (c *clientConn) watchCustom(names []string) {
	for _, n := range names {
		if len(c.pin.customNames) >= session.MaxCustomNames {
			return
		}
		if c.pin.customNames == nil {
			c.pin.customNames = map[string]struct{}{}
		}
		c.pin.customNames[strings.ToLower(n)] = struct{}{}
	}
}

// watchBindParams takes custom setting names from the text parameters of a
// Bind to a statement that calls set_config. c.mu held.
func (c *clientConn) watchBindParams(tail []byte) {
	// tail: int16 nformats, formats, int16 nparams, (int32 len, bytes)...
	if len(tail) < 2 {
		return
	}
	nf := int(tail[0])<<8 | int(tail[1])
	p := 2 + 2*nf
	if len(tail) < p+2 || nf > 1 && nf < 0 {
		return
	}
	allText := nf == 0 || (nf == 1 && tail[2] == 0 && tail[3] == 0)
	np := int(tail[p])<<8 | int(tail[p+1])
	p += 2
	for i := 0; i < np && p+4 <= len(tail); i++ {
		l := int(int32(uint32(tail[p])<<24 | uint32(tail[p+1])<<16 | uint32(tail[p+2])<<8 | uint32(tail[p+3])))
		p += 4
		if l < 0 {
			continue
		}
		if p+l > len(tail) {
			return
		}
		text := allText || (nf > 1 && i < nf && tail[2+2*i] == 0 && tail[3+2*i] == 0)
		if v := string(tail[p : p+l]); text && session.IsCustomName(v) {
			c.watchCustom([]string{v})
		}
		p += l
	}
}

// noteState records a filter hit for the current transaction. It returns
// the statement to refuse under pin_policy = error, or "". c.mu held.
func (c *clientConn) noteState(h session.StateHit) string {
	if !h.May {
		return ""
	}
	c.pin.stateDirty = true
	c.watchCustom(h.Custom)
	if h.Load {
		c.pin.loaded = true
	}
	if h.Pin != "" && c.pin.policy == "error" {
		return h.Pin
	}
	return ""
}

// pinRefusal is the error for a statement refused under pin_policy = error.
func pinRefusal(stmt string) string {
	return stmt + " creates session state that cannot follow the client to another server; it is refused in transaction pooling mode (pin_policy = error)"
}

// needsStateCheck reports whether the transaction that just ended must be
// looked at before its server is released. c.mu held.
func (c *clientConn) needsStateCheck() bool {
	return c.track && c.pin.policy != "allow" && (c.pin.stateDirty || c.pin.reason != "")
}

// checkState reads the session state of server s after a transaction that
// may have changed it, carries the settings, and either releases the
// server or keeps the client pinned to it. It runs on its own goroutine;
// the client waits on checkDone before using its server again.
func (c *clientConn) checkState(s *pool.Server) {
	c.mu.Lock()
	q := c.stateQueryLocked()
	c.mu.Unlock()
	res, err := execReset(s, q)
	c.mu.Lock()
	if err != nil {
		// The server's state is unknown: close it; the client's settings
		// stay as last known.
		s.MarkBroken()
		c.server = nil
		c.endCheck()
		c.mu.Unlock()
		c.logger().Warn("reading session state failed; closing that server", zap.Error(err))
		c.pool.Release(s)
		c.armIdleTimeout()
		return
	}
	var reason string
	extra := make([]setting, 0, len(c.extra))
	for _, row := range res.Rows {
		if len(row) < 2 {
			continue
		}
		if row[0] == "s" {
			name := strings.ToLower(row[1])
			if _, tracked := canonicalTracked[name]; !tracked && len(row) > 2 {
				extra = append(extra, setting{Name: name, Value: row[2]})
			}
			continue
		}
		if row[1] != "0" && reason == "" {
			reason = row[0]
		}
	}
	if c.pin.loaded {
		reason = "LOAD"
	}
	sort.Slice(extra, func(i, j int) bool { return extra[i].Name < extra[j].Name })
	c.extra = extra
	s.Applied = make(map[string]string, len(extra))
	for _, e := range extra {
		s.Applied[e.Name] = e.Value
	}
	c.pin.stateDirty = false
	wasPinned := c.pin.reason != ""
	if reason != "" {
		if !wasPinned {
			c.logger().Info("client pinned to its server", zap.String("reason", reason), zap.Uint64("server_id", s.ID))
		}
		c.pin.reason = reason
		c.endCheck()
		c.mu.Unlock()
		s.SetHandler(c)
		c.armIdleTimeout() // client_idle_timeout holds for pinned clients too
		return
	}
	c.pin.reason = ""
	c.server = nil
	c.endCheck()
	notes := c.takeNotes(nil)
	if notes != nil {
		c.wmu.Lock()
	}
	c.mu.Unlock()
	if notes != nil {
		c.armWriteDeadline()
		_, _ = c.writeLocked(notes)
		c.wmu.Unlock()
	}
	if wasPinned {
		// The pinned state is gone; what else the session did must not
		// reach the next client.
		c.resetServer(s)
	}
	c.releaseServer(s)
	c.armIdleTimeout()
}

// stateQueryLocked is stateQuery plus the custom settings the client may
// have set. c.mu held.
func (c *clientConn) stateQueryLocked() string {
	if len(c.pin.customNames) == 0 {
		return stateQuery
	}
	b := []byte(stateQuery)
	b = append(b, "\nUNION ALL SELECT 's', n, current_setting(n, true) FROM unnest(ARRAY["...)
	first := true
	for n := range c.pin.customNames {
		if !first {
			b = append(b, ',')
		}
		first = false
		b = appendLiteral(b, n)
	}
	b = append(b, "]::text[]) AS n WHERE coalesce(current_setting(n, true), '') <> ''"...)
	return string(b)
}

// endCheck marks the state check finished. c.mu held.
func (c *clientConn) endCheck() {
	c.pin.checking = false
	if c.pin.checkDone != nil {
		close(c.pin.checkDone)
		c.pin.checkDone = nil
	}
}

// waitCheck waits for a running state check. c.mu held; it may be
// released and retaken.
func (c *clientConn) waitCheck() {
	for c.pin.checking {
		ch := c.pin.checkDone
		c.mu.Unlock()
		<-ch
		c.mu.Lock()
	}
}

// resetServer runs DISCARD ALL on a server the client no longer holds, and
// forgets what mux knew was on it; a failure closes the server.
func (c *clientConn) resetServer(s *pool.Server) {
	resetWith(s, "DISCARD ALL")
}

// resetWith runs reset query q on a server no client holds and forgets
// the settings mux applied there, and its prepared statements if q drops
// them; a failure closes the server.
func resetWith(s *pool.Server, q string) {
	if _, err := execReset(s, q); err != nil {
		s.MarkBroken()
		return
	}
	s.Applied = map[string]string{}
	if u := strings.ToUpper(q); strings.Contains(u, "DISCARD ALL") || strings.Contains(u, "DEALLOCATE ALL") {
		s.Stmts.Clear()
		s.UnnamedKey = 0
	}
}

// releaseServer gives back a server the client let go of at the end of a
// transaction. With server_reset_query_always the reset query runs on it
// first (off the loop; the client does not wait), as PgBouncer does in
// every pool mode for applications that misuse session state; mux still
// carries each client's settings and prepared statements to its next
// server.
func (c *clientConn) releaseServer(s *pool.Server) {
	cfg := c.p.config()
	if !cfg.ServerResetQueryAlways || cfg.ServerResetQuery == "" || s.Broken() {
		c.pool.Release(s)
		return
	}
	s.SetHandler(nil)
	go func() {
		resetWith(s, cfg.ServerResetQuery)
		c.pool.Release(s)
	}()
}

// execReset runs an internal query that must leave server s clean (sync,
// check, ROLLBACK, reset), bounded by resetTimeout.
func execReset(s *pool.Server, sql string) (*pool.Result, error) {
	ctx, cancel := context.WithTimeout(context.Background(), resetTimeout)
	defer cancel()
	return s.ExecIdle(ctx, sql)
}
