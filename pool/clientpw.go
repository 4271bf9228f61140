package pool

import "time"

// SetClientPassword makes pw, the cleartext password a client logged in
// with (LDAP authentication, for a user without a password of its own),
// the one new servers log in with, as PgBouncer does; it survives a
// reload that gives the pool no password. Servers already connected stay.
func (p *Pool) SetClientPassword(pw string) {
	if r := p.reads.Load(); r != nil {
		r.SetClientPassword(pw)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.clientPW = pw
	if p.cfg.Target.Password == pw {
		return
	}
	p.cfg.Target.Password = pw
	p.backoff, p.retryAt = 0, time.Time{}
}
