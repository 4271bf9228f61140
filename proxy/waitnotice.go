package proxy

// query_wait_notify: a client that waits long for a server is told why
// while it waits (the pool cannot reach Postgres, or every server is in
// use), rather than hearing nothing until query_wait_timeout. The wait
// itself stays: a failover may be under way.

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
)

// waitNotice sends a waiting client a NOTICE every query_wait_notify. It
// is made only once a client has to wait, so a client served at once
// arms no timer.
type waitNotice struct {
	c       *clientConn
	pl      *pool.Pool
	since   time.Time
	every   time.Duration
	t       atomic.Pointer[time.Timer] // the next NOTICE's
	stopped atomic.Bool
}

// noticeWhileWaiting starts the NOTICEs for a client waiting for a server
// of pl since since; nil when query_wait_notify is 0. Stop it when the
// wait ends.
func (c *clientConn) noticeWhileWaiting(pl *pool.Pool, since time.Time) *waitNotice {
	every := c.p.config().QueryWaitNotify.D()
	if every <= 0 {
		return nil
	}
	w := &waitNotice{c: c, pl: pl, since: since, every: every}
	w.t.Store(time.AfterFunc(max(time.Until(since.Add(every)), 0), w.fire))
	return w
}

// stop ends the NOTICEs; a nil w does nothing.
func (w *waitNotice) stop() {
	if w == nil {
		return
	}
	w.stopped.Store(true)
	if t := w.t.Load(); t != nil {
		t.Stop()
	}
}

// fire sends one NOTICE, if the client still waits, and re-arms.
func (w *waitNotice) fire() {
	c := w.c
	c.mu.Lock()
	waiting := c.waiting && !c.gone
	c.mu.Unlock()
	if w.stopped.Load() || !waiting {
		return
	}
	if err := c.writeTimed(wire.AppendMessage(nil, w.notice())); err != nil {
		return
	}
	if !w.stopped.Load() {
		w.t.Store(time.AfterFunc(w.every, w.fire)) // a stop meanwhile: it finds stopped set
	}
}

// notice says how long the client has waited and why.
func (w *waitNotice) notice() *pgproto3.NoticeResponse {
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
