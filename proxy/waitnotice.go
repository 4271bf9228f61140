package proxy

// query_wait_notify: a client that waits long for a server is told why
// while it waits (the pool cannot reach Postgres, or every server is in
// use), rather than hearing nothing until query_wait_timeout. The wait
// itself stays: a failover may be under way.

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
)

// waitNotice sends a waiting client a NOTICE every query_wait_notify. A
// loop client keeps one, made at its first wait, for all its waits (its
// timer re-armed, nothing allocated per wait); other waits make their own.
type waitNotice struct {
	c *clientConn
	t *time.Timer

	mu     sync.Mutex // guards the fields below; never held while writing
	pl     *pool.Pool
	since  time.Time
	next   time.Time // when the next NOTICE is due
	every  time.Duration
	active bool
}

// noticeWhileWaiting starts the NOTICEs for a client waiting for a server
// of pl since since; nil when query_wait_notify is 0. Stop it when the
// wait ends.
func (c *clientConn) noticeWhileWaiting(pl *pool.Pool, since time.Time) *waitNotice {
	var w *waitNotice
	if c.lc != nil {
		w = c.lc.notice
	}
	every := c.p.config().QueryWaitNotify.D()
	if every <= 0 {
		return nil
	}
	if w == nil {
		w = &waitNotice{c: c}
		w.t = time.AfterFunc(time.Hour, w.fire)
		w.t.Stop()
		if c.lc != nil {
			c.lc.notice = w
		}
	}
	w.start(pl, since, every)
	return w
}

// start arms w for a wait for pl that began at since.
func (w *waitNotice) start(pl *pool.Pool, since time.Time, every time.Duration) {
	w.mu.Lock()
	w.pl, w.since, w.every, w.active = pl, since, every, true
	w.next = since.Add(every)
	w.mu.Unlock()
	w.t.Reset(max(time.Until(since.Add(every)), 0))
}

// stop ends the NOTICEs; a nil w does nothing.
func (w *waitNotice) stop() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.active = false
	w.mu.Unlock()
	w.t.Stop()
}

// fire sends the NOTICE due, if the client still waits, and re-arms. A
// firing meant for an earlier wait finds the next NOTICE not yet due.
func (w *waitNotice) fire() {
	c := w.c
	c.mu.Lock()
	waiting := c.waiting && !c.gone
	c.mu.Unlock()
	w.mu.Lock()
	if !w.active || !waiting {
		w.mu.Unlock()
		return
	}
	if wait := time.Until(w.next); wait > 0 {
		w.mu.Unlock()
		w.t.Reset(wait)
		return
	}
	w.next = time.Now().Add(w.every)
	msg := w.noticeLocked()
	w.mu.Unlock()
	if err := c.writeTimed(wire.AppendMessage(nil, msg)); err != nil {
		return
	}
	w.mu.Lock()
	again, every := w.active, w.every
	w.mu.Unlock()
	if again {
		w.t.Reset(every)
	}
}

// noticeLocked says how long the client has waited and why. w.mu held.
func (w *waitNotice) noticeLocked() *pgproto3.NoticeResponse {
	waited := time.Since(w.since).Round(100 * time.Millisecond)
	why := fmt.Sprintf("all %d server connections of the pool are in use", w.pl.Config().MaxSize)
	if err := w.pl.LastConnectError(); err != nil {
		why = "the server cannot be reached: " + err.Error()
	}
	hint := "mux keeps waiting (the server may be failing over)"
	if d := w.c.p.config().QueryWaitTimeout.D(); d > 0 {
		hint += fmt.Sprintf("; query_wait_timeout ends the wait with an error after %s", d)
	}
	return &pgproto3.NoticeResponse{
		Severity: "NOTICE", SeverityUnlocalized: "NOTICE", Code: "00000",
		Message: fmt.Sprintf("waiting %s for a server connection: %s", waited, why),
		Hint:    hint + " (query_wait_notify)",
	}
}

// loginTemplate is template for the welcome. When the pool has none at
// hand, the client may wait for the first server: AuthenticationOk goes
// first (sentAuthOK), because clients take a NOTICE only after it, and
// query_wait_notify's NOTICEs follow while it waits.
func (c *clientConn) loginTemplate(ctx context.Context) (tmpl *pool.Template, sentAuthOK bool, err error) {
	if c.pool.TemplateNow() != nil {
		tmpl, err = c.template(ctx)
		return tmpl, false, err
	}
	if c.p.config().QueryWaitNotify > 0 {
		if err := c.write(wire.AppendMessage(nil, &pgproto3.AuthenticationOk{})); err != nil {
			return nil, false, err
		}
		sentAuthOK = true
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if !c.p.loginWaits.add(c, cancel) {
		return nil, sentAuthOK, shutdownError()
	}
	defer c.p.loginWaits.remove(c)
	c.setWaiting(true)
	notice := c.noticeWhileWaiting(c.pool, time.Now())
	tmpl, err = c.template(ctx)
	notice.stop()
	c.setWaiting(false)
	if err != nil && c.p.loginWaits.ended() {
		return nil, sentAuthOK, shutdownError()
	}
	return tmpl, sentAuthOK, err
}

func (c *clientConn) setWaiting(v bool) {
	c.mu.Lock()
	c.waiting = v
	c.mu.Unlock()
}

// loginWaits are the logins waiting for their pool's first server (no
// cancel key yet, so Drain does not know them as clients): a shutdown
// ends their wait, and they end with 57P01.
type loginWaits struct {
	mu      sync.Mutex
	waits   map[*clientConn]context.CancelFunc
	stopped bool
}

// add registers c's wait, which cancel ends; false once a shutdown ended
// the waits.
func (l *loginWaits) add(c *clientConn, cancel context.CancelFunc) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.stopped {
		return false
	}
	if l.waits == nil {
		l.waits = map[*clientConn]context.CancelFunc{}
	}
	l.waits[c] = cancel
	return true
}

func (l *loginWaits) remove(c *clientConn) {
	l.mu.Lock()
	delete(l.waits, c)
	l.mu.Unlock()
}

// end tells every waiting login that mux stops and ends its wait, and
// those that would begin.
func (l *loginWaits) end() {
	l.mu.Lock()
	l.stopped = true
	waits := l.waits
	l.waits = nil
	l.mu.Unlock()
	for c, cancel := range waits {
		c.sendError(shutdownError())
		cancel()
	}
}

func (l *loginWaits) ended() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stopped
}

// shutdownError is what a client still connected when mux stops hears.
func shutdownError() *wire.Error {
	return &wire.Error{Severity: "FATAL", Code: wire.CodeAdminShutdown,
		Message: "terminating connection due to administrator command",
		Detail:  "mux is shutting down; connect again"}
}
