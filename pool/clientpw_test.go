package pool

import (
	"context"
	"testing"
	"time"
)

// A pool made without a password logs in with the one SetClientPassword
// gives, and keeps it across a reload that gives it none.
func TestSetClientPassword(t *testing.T) {
	p := newPool(t, 2, target("scramrole", ""))
	p.SetClientPassword("scrampw")
	cfg := p.Config()
	cfg.Target.Password = "" // what a reload computes for an LDAP user
	p.SetConfig(cfg)
	if got := p.Config().Target.Password; got != "scrampw" {
		t.Fatalf("password after reload = %q", got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := p.Acquire(ctx)
	if err != nil {
		t.Fatalf("login with the client's password: %v", err)
	}
	p.Release(s)
}
