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
// loop client keeps one, made at its first wait, for all its waits, and
// the sweeper sends its NOTICEs (sweepLoop): a wait arms no timer, which
// at a thousand waits a second would cost more than the NOTICEs. Other
// waits make their own, with a timer.
type waitNotice struct {
	c *clientConn
	t *time.Timer // nil for a loop client's

	mu     sync.Mutex // guards the fields below; never held while writing
	pl     *pool.Pool
	since  time.Time
	next   time.Time // when the next NOTICE is due
	every  time.Duration
	active bool
}

// noticeWhileWaiting starts the NOTICEs, on a timer, for a client
// waiting for a server of pl since since (at login, or on the goroutine
// driver); nil when query_wait_notify is 0. Stop it when the wait ends.
func (c *clientConn) noticeWhileWaiting(pl *pool.Pool, since time.Time) *waitNotice {
	every := c.p.config().QueryWaitNotify.D()
	if every <= 0 {
		return nil
	}
	w := &waitNotice{c: c}
	w.t = time.AfterFunc(time.Hour, w.fire)
	w.t.Stop()
	w.start(pl, since, every)
	return w
}

// loopNotice starts the NOTICEs for a logged-in loop client's wait; the
// sweeper sends them.
func (c *clientConn) loopNotice(pl *pool.Pool, since time.Time) {
	every := c.p.config().QueryWaitNotify.D()
	if every <= 0 {
		return
	}
	w := c.lc.notice
	if w == nil {
		w = &waitNotice{c: c}
		c.mu.Lock() // the sweeper reads it under mu
		c.lc.notice = w
		c.mu.Unlock()
	}
	w.start(pl, since, every)
}

// start arms w for a wait for pl that began at since.
func (w *waitNotice) start(pl *pool.Pool, since time.Time, every time.Duration) {
	w.mu.Lock()
	w.pl, w.since, w.every, w.active = pl, since, every, true
	w.next = since.Add(every)
	w.mu.Unlock()
	if w.t != nil {
		w.t.Reset(max(time.Until(w.next), 0))
	}
}

// stop ends the NOTICEs; a nil w does nothing.
func (w *waitNotice) stop() {
	if w == nil {
		return
	}
	w.mu.Lock()
	w.active = false
	w.mu.Unlock()
	if w.t != nil {
		w.t.Stop()
	}
}

// fire is the timer's: it sends the NOTICE due and re-arms. A firing
// meant for an earlier wait finds the next NOTICE not yet due.
func (w *waitNotice) fire() {
	c := w.c
	c.mu.Lock()
	waiting := c.waiting && !c.gone
	c.mu.Unlock()
	if next := w.due(time.Now(), waiting); !next.IsZero() {
		w.t.Reset(max(time.Until(next), 0))
	}
}

// due sends the NOTICE if one is due at now and the client (waiting, as
// its caller read under c.mu) still waits, and returns when the next one
// is due; zero when the wait is over.
func (w *waitNotice) due(now time.Time, waiting bool) time.Time {
	w.mu.Lock()
	if !w.active || !waiting {
		w.mu.Unlock()
		return time.Time{}
	}
	if now.Before(w.next) {
		next := w.next
		w.mu.Unlock()
		return next
	}
	w.next = now.Add(w.every)
	next, msg := w.next, w.noticeLocked()
	w.mu.Unlock()
	if err := w.c.writeTimed(wire.AppendMessage(nil, msg)); err != nil {
		return time.Time{}
	}
	return next
}

// sweepNoticeLocked is the sweeper's part for a loop client: the NOTICE due, if
// any. c.mu held by the caller, which calls the result (nil: none) after
// letting go.
func (c *clientConn) sweepNoticeLocked() *waitNotice {
	if c.lc == nil || c.lc.notice == nil || !c.waiting || c.gone {
		return nil
	}
	return c.lc.notice
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
