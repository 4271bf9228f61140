package proxy

// The admin console lives in package admin; this file hands it its
// clients after login and answers what it asks of the proxy
// (consoleTarget, an admin.Target). The PAUSE/DISABLE gate that its
// commands set is gate.go's.

import (
	"unsafe"

	"go.uber.org/zap"

	"github.com/muxpg/mux/admin"
	"github.com/muxpg/mux/config"
	"github.com/muxpg/mux/internal/wire"
	"github.com/muxpg/mux/pool"
	"github.com/muxpg/mux/session"
)

// adminWelcome admits an authenticated user to the console, or refuses
// one who is neither in admin_users nor in stats_users of cfg, the
// login's.
func (c *clientConn) adminWelcome(cfg *config.Config, st *startup) error {
	out, err := admin.Welcome(cfg, st.User)
	if err != nil {
		return err
	}
	return c.write(out)
}

// serveAdmin runs a console session after adminWelcome.
func (c *clientConn) serveAdmin(st *startup) {
	peer := admin.Peer{
		ID: c.id, User: c.user, Database: c.database, TLS: c.tls, Connected: c.connected,
		Conn: c.conn, Write: c.writeTimed, SendError: c.sendError, Log: c.logger(),
	}
	for _, set := range st.Settings {
		if set.Name == "application_name" {
			peer.AppName = set.Value
		}
	}
	c.p.console.Serve(peer)
}

// adminHooks returns the RELOAD and SHUTDOWN hooks. They are read under
// admin.mu so that tests may set them on a serving proxy.
func (p *Proxy) adminHooks() (reload func() error, shutdown func(DrainMode)) {
	p.admin.mu.Lock()
	defer p.admin.mu.Unlock()
	return p.OnReload, p.OnShutdown
}

// consoleTarget is the proxy as the admin console sees it.
type consoleTarget struct{ p *Proxy }

func (t consoleTarget) Config() *config.Config { return t.p.config() }
func (t consoleTarget) Version() string        { return t.p.Version }
func (t consoleTarget) Hosts() []admin.Host    { return t.p.consoleHosts() }

func (t consoleTarget) Pools() []admin.Pool {
	counts := t.p.poolCounts()
	infos := t.p.Pools()
	out := make([]admin.Pool, len(infos))
	for i, pi := range infos {
		out[i] = admin.Pool{
			Database: pi.Database, User: pi.User, PoolMode: pi.PoolMode, Target: pi.Target,
			ClientsActive: pi.ClientsActive, ClientsWaiting: pi.ClientsWaiting, ClientsIdle: pi.ClientsIdle,
			Servers: pi.Servers, Total: counts[poolKey{pi.Database, pi.User}].Total, MaxWait: pi.MaxWait,
			Stats: pi.Stats,
		}
	}
	return out
}

func (t consoleTarget) Clients() []admin.Client {
	infos := t.p.Clients()
	out := make([]admin.Client, len(infos))
	for i, ci := range infos {
		out[i] = admin.Client{
			ID: ci.ID, User: ci.User, Database: ci.Database, Waiting: ci.State == "waiting", ServerID: ci.ServerID,
			Remote: ci.Remote, Local: ci.Local, ConnectTime: ci.ConnectTime, RequestTime: ci.RequestTime,
			ApplicationName: ci.ApplicationName, TLS: ci.TLS, PinReason: ci.PinReason,
		}
	}
	return out
}

func (t consoleTarget) Lists() admin.Lists {
	counts := t.p.poolCounts()
	l := admin.Lists{Pools: len(counts), LoggedIn: t.p.loggedIn(), Connections: t.p.NumClients()}
	for _, st := range counts {
		l.Servers += st.Total
	}
	return l
}

func (t consoleTarget) Mem() admin.Mem {
	m := admin.Mem{
		ClientSize: int(unsafe.Sizeof(clientConn{})),
		ServerSize: int(unsafe.Sizeof(pool.Server{})),
		PoolSize:   int(unsafe.Sizeof(pool.Pool{}) + unsafe.Sizeof(session.Registry{}) + unsafe.Sizeof(poolStats{})),
	}
	p := t.p
	p.poolMu.Lock()
	for _, reg := range p.stmts {
		n, bytes := reg.Mem()
		m.Statements += n
		m.StatementBytes += bytes
	}
	p.poolMu.Unlock()
	return m
}

func (t consoleTarget) Held(db string) (paused, disabled bool) {
	return t.p.admin.isPaused(db), t.p.admin.isDisabled(db)
}

// KnownDatabase reports whether name is a [databases] entry, has a pool
// (a database reached through "*"), or is paused or disabled by name.
func (t consoleTarget) KnownDatabase(name string) bool {
	p := t.p
	if _, ok := p.config().Databases[name]; ok && name != config.WildcardDatabase {
		return true
	}
	if p.admin.heldByName(name) {
		return true
	}
	return len(p.poolsOf(name)) > 0
}

func (t consoleTarget) Pause(db string)                { t.p.admin.setPaused(db) }
func (t consoleTarget) Resume(db string) error         { return t.p.admin.resume(db) }
func (t consoleTarget) SetDisabled(db string, on bool) { t.p.admin.setDisabled(db, on) }
func (t consoleTarget) Kill(db string)                 { t.p.kill(db) }
func (t consoleTarget) KillClient(id uint64) error     { return t.p.killClient(id) }
func (t consoleTarget) Set(name, value string) error   { return t.p.Set(name, value) }

// PauseComplete reports whether no client is on its way to a server of db
// and every server of db is idle.
func (t consoleTarget) PauseComplete(db string) bool {
	p := t.p
	if p.admin.passing.Load() > 0 || p.admin.admittingTo(db) > 0 {
		return false
	}
	for _, pl := range p.poolsOf(db) {
		if st := pl.Stats(); st.Total > st.Idle {
			return false
		}
	}
	return true
}

func (t consoleTarget) Reconnect(db string) {
	for _, pl := range t.p.poolsOf(db) {
		pl.Reconnect()
	}
}

func (t consoleTarget) CloseNeeded(db string) bool {
	for _, pl := range t.p.poolsOf(db) {
		for _, si := range pl.Servers() {
			if si.CloseNeeded {
				return true
			}
		}
	}
	return false
}

func (t consoleTarget) Reload() error {
	reload, _ := t.p.adminHooks()
	if reload == nil {
		return admin.ErrNotAvailable
	}
	return reload()
}

func (t consoleTarget) Shutdown(user string, mode admin.ShutdownMode) error {
	_, shutdown := t.p.adminHooks()
	if shutdown == nil {
		return admin.ErrNotAvailable
	}
	drain := WaitForClients
	if mode == admin.ShutdownWaitForServers {
		drain = CloseBetweenTransactions
	}
	t.p.log.Info("shutdown requested from the admin console", zap.String("user", user),
		zap.Bool("close_between_transactions", drain == CloseBetweenTransactions))
	shutdown(drain)
	return nil
}

// Stopping: the listeners are closed, or mux drains and no regular client
// is left (so the drain does not wait for consoles).
func (t consoleTarget) Stopping() bool {
	p := t.p
	return p.closing.Load() || p.draining.Load() && p.loggedIn() == 0
}

// poolCounts returns each pool's counters (servers being connected are
// in Total only).
func (p *Proxy) poolCounts() map[poolKey]pool.Stats {
	p.poolMu.Lock()
	defer p.poolMu.Unlock()
	out := make(map[poolKey]pool.Stats, len(p.pools))
	for k, pl := range p.pools {
		out[k] = pl.Stats()
	}
	return out
}

// poolsOf returns the pools of database db, or every pool if db is "".
func (p *Proxy) poolsOf(db string) []*pool.Pool {
	p.poolMu.Lock()
	defer p.poolMu.Unlock()
	var out []*pool.Pool
	for key, pl := range p.pools {
		if db == "" || key.database == db {
			out = append(out, pl)
		}
	}
	return out
}

// kill disconnects every client of db (all if "") now and closes its
// servers as they come back; like PgBouncer, the database (or everything)
// stays paused until RESUME. Consoles are not in p.keys, so they stay.
func (p *Proxy) kill(db string) {
	p.admin.setPaused(db)
	for _, pl := range p.poolsOf(db) {
		pl.Reconnect()
	}
	p.keysMu.Lock()
	var victims []*clientConn
	for _, c := range p.keys {
		if db == "" || c.database == db {
			victims = append(victims, c)
		}
	}
	p.keysMu.Unlock()
	detail := "KILL in the admin console"
	if db != "" {
		detail = "KILL " + db + " in the admin console"
	}
	for _, c := range victims {
		c.adminClose(detail)
	}
}

// killClient disconnects the regular client id (KILL_CLIENT); its server
// is released as any leaving client's is (rolled back, or closed).
func (p *Proxy) killClient(id uint64) error {
	p.keysMu.Lock()
	var victim *clientConn
	for _, c := range p.keys {
		if c.id == id {
			victim = c
			break
		}
	}
	p.keysMu.Unlock()
	if victim == nil {
		return admin.ErrNoClient
	}
	victim.adminClose("KILL_CLIENT in the admin console")
	return nil
}

// adminClose tells c that an administrator ends it (FATAL 57P01) and
// ends it.
func (c *clientConn) adminClose(detail string) {
	c.sendError(&wire.Error{Severity: "FATAL", Code: wire.CodeAdminShutdown,
		Message: "terminating connection due to administrator command", Detail: detail})
	c.terminate()
}

// PauseAll is SIGUSR1, PAUSE without a database: no client gets a server
// until ResumeAll, and every server is closed once idle.
func (p *Proxy) PauseAll() {
	p.admin.setPaused("")
	consoleTarget{p}.Reconnect("")
}

// ResumeAll is SIGUSR2, RESUME without a database: every pause is lifted;
// an error if nothing is paused.
func (p *Proxy) ResumeAll() error { return p.admin.resume("") }
