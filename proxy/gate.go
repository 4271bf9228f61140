package proxy

// The gate the console's PAUSE, KILL and DISABLE put in front of clients:
// a client passes it before it takes a server (admit) or, at login, the
// pool's template. While nothing is paused a client passes with two atomic
// operations and no lock.

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
)

// adminPoll is how often a client held at a paused database looks at
// state nothing signals: its own termination (KILL), mux shutting down.
const adminPoll = 20 * time.Millisecond

// adminState is the gate: what the console's PAUSE, KILL and DISABLE
// change in a running proxy (through consoleTarget, admin.go), and what
// clients consult at login and before they take a server. The zero value
// is ready; mu guards everything but the atomics.
type adminState struct {
	mu        sync.Mutex
	pauseAll  bool            // PAUSE without a database
	paused    map[string]bool // PAUSE db (and KILL db), by the name clients ask for
	disabled  map[string]bool // DISABLE db
	admitting map[string]int  // clients let through while something is paused, not yet holding a server
	resumed   chan struct{}   // closed when a pause is lifted; nil until someone waits

	// npaused is pauseAll plus len(paused): while 0, clients pass the gate
	// without taking mu. passing counts clients that did so and do not hold
	// their server yet; PAUSE waits for it to drain.
	npaused atomic.Int32
	passing atomic.Int64
}

// setPaused pauses db, or everything if db is "".
func (a *adminState) setPaused(db string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if db == "" {
		a.pauseAll = true
	} else {
		if a.paused == nil {
			a.paused = map[string]bool{}
		}
		a.paused[db] = true
	}
	a.countPausesLocked()
}

// resume lifts the pause of db; without a database it lifts every pause.
func (a *adminState) resume(db string) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case db == "" && !a.pauseAll && len(a.paused) == 0:
		return wire.Errorf(wire.CodeObjectNotInPrerequisiteState, "pooler is not paused")
	case db == "":
		a.pauseAll = false
		clear(a.paused)
	case !a.paused[db]:
		return wire.Errorf(wire.CodeObjectNotInPrerequisiteState, "database %s is not paused", db)
	default:
		delete(a.paused, db)
	}
	a.countPausesLocked()
	if a.resumed != nil {
		close(a.resumed)
		a.resumed = nil
	}
	return nil
}

func (a *adminState) countPausesLocked() {
	n := len(a.paused)
	if a.pauseAll {
		n++
	}
	a.npaused.Store(int32(n))
}

func (a *adminState) isPaused(db string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.pauseAll || a.paused[db]
}

func (a *adminState) setDisabled(db string, on bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.disabled == nil {
		a.disabled = map[string]bool{}
	}
	if on {
		a.disabled[db] = true
	} else {
		delete(a.disabled, db)
	}
}

// heldByName reports whether db is paused (PAUSE db, KILL db) or disabled
// by its name.
func (a *adminState) heldByName(db string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.paused[db] || a.disabled[db]
}

func (a *adminState) isDisabled(db string) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.disabled[db]
}

// loginAllowed refuses logins to a DISABLEd database.
func (a *adminState) loginAllowed(db string) error {
	if a.isDisabled(db) {
		return wire.Fatal(wire.CodeCannotConnectNow, "database %s is disabled", quote(db))
	}
	return nil
}

// admittingTo counts clients let through the gate to db (all if "") that
// do not hold their server yet.
func (a *adminState) admittingTo(db string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	if db == "" {
		n := 0
		for _, v := range a.admitting {
			n += v
		}
		return n
	}
	return a.admitting[db]
}

// gateTicket is what the gate hands out; done gives it back.
type gateTicket struct {
	db   string
	slow bool // counted in admitting, not in passing
}

// tryAdmit lets a client through without waiting or locking when nothing
// is paused. PAUSE sets npaused before it reads passing, so either it sees
// this client or this client sees the pause.
func (a *adminState) tryAdmit() (gateTicket, bool) {
	a.passing.Add(1)
	if a.npaused.Load() == 0 {
		return gateTicket{}, true
	}
	a.passing.Add(-1)
	return gateTicket{}, false
}

// wait holds c while its database (or everything) is paused, until ctx
// ends, c is terminated (KILL) or mux stops.
func (a *adminState) wait(ctx context.Context, c *clientConn) (gateTicket, error) {
	c.mu.Lock()
	c.waiting = true
	c.mu.Unlock()
	defer func() {
		c.mu.Lock()
		c.waiting = false
		c.mu.Unlock()
	}()
	tick := time.NewTicker(adminPoll)
	defer tick.Stop()
	for {
		a.mu.Lock()
		if !a.pauseAll && !a.paused[c.database] {
			if a.admitting == nil {
				a.admitting = map[string]int{}
			}
			a.admitting[c.database]++
			a.mu.Unlock()
			return gateTicket{db: c.database, slow: true}, nil
		}
		if a.resumed == nil {
			a.resumed = make(chan struct{})
		}
		resumed := a.resumed
		a.mu.Unlock()
		select {
		case <-resumed:
		case <-ctx.Done():
			return gateTicket{}, &wire.Error{Severity: "FATAL", Code: wire.CodeProtocolViolation,
				Message: "database " + quote(c.database) + " is paused and was not resumed in time",
				Hint:    "RESUME it in the admin console"}
		case <-tick.C:
			if c.isGone() || c.p.closing.Load() {
				return gateTicket{}, wire.Fatal(wire.CodeAdminShutdown, "terminating connection due to administrator command")
			}
		}
	}
}

func (a *adminState) done(t gateTicket) {
	if !t.slow {
		a.passing.Add(-1)
		return
	}
	a.mu.Lock()
	if a.admitting[t.db]--; a.admitting[t.db] <= 0 {
		delete(a.admitting, t.db)
	}
	a.mu.Unlock()
}

func (c *clientConn) isGone() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.gone
}

// admit is the gate before the client takes a server: it waits while the
// client's database is paused, bounded by query_wait_timeout. The caller
// gives the ticket back with admin.done once it holds a server or gave up.
func (c *clientConn) admit() (gateTicket, error) {
	a := &c.p.admin
	if t, ok := a.tryAdmit(); ok {
		return t, nil
	}
	ctx, cancel := c.waitContext()
	defer cancel()
	return a.wait(ctx, c)
}

// template returns the pool's template once the client's database is not
// paused (fetching it may connect a server), so logins to a paused
// database wait, as in PgBouncer, bounded by client_login_timeout too.
func (c *clientConn) template(ctx context.Context) (*pool.Template, error) {
	a := &c.p.admin
	t, ok := a.tryAdmit()
	if !ok {
		wctx := ctx
		if d := c.p.config().ClientLoginTimeout.D(); d > 0 {
			var cancel context.CancelFunc
			wctx, cancel = context.WithDeadline(ctx, c.connected.Add(d))
			defer cancel()
		}
		var err error
		if t, err = a.wait(wctx, c); err != nil {
			return nil, err
		}
	}
	defer a.done(t)
	return c.pool.Template(ctx)
}
