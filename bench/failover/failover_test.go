//go:build unix

package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest"
)

// TestFailoverUnderLoad is issue 14's first done-when: 50 clients through
// mux, the primary killed (-m immediate) and the replica promoted. Writes
// succeed again within 3 s of the promotion, no read fails, and every id
// whose COMMIT succeeded is on the new primary. Writers mid-transaction
// may fail (08006, 57P01): they are counted, not committed.
func TestFailoverUnderLoad(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a primary and a replica")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	l, err := startLocal(ctx, zaptest.NewLogger(t, zaptest.Level(zap.WarnLevel)).Named("mux"))
	if err != nil {
		t.Fatal(err)
	}
	defer l.stop()
	cfg := l.loadConfig()
	cfg.Clients, cfg.Readers, cfg.Think = 50, 25, 5*time.Millisecond
	cfg.Before, cfg.After, cfg.Logf = 2*time.Second, 3*time.Second, t.Logf
	r, err := runLoad(ctx, cfg)
	if r != nil {
		var b bytes.Buffer
		r.print(&b)
		t.Logf("report:\n%s", b.String())
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("writes succeeded again %v after the promotion (pg_ctl promote took %v)", r.Recovery, r.PromoteTook)
	if r.Recovery < 0 || r.Recovery > 3*time.Second {
		t.Errorf("writes came back %v after the promotion, want within 3s", r.Recovery)
	}
	if r.ReadErrors() != 0 {
		t.Errorf("read errors: %v", r.ReadErrs)
	}
	if r.Writes[0] == 0 || r.Writes[2] == 0 || r.Reads[0] == 0 || r.Reads[2] == 0 {
		t.Errorf("no load on one side of the failover: writes %v, reads %v", r.Writes, r.Reads)
	}
	if r.ReadsOnPri[0] != 0 {
		t.Errorf("%d reads before the kill were answered by the primary, want the replica", r.ReadsOnPri[0])
	}
	if r.Committed == 0 || r.Missing() != 0 {
		t.Errorf("%d of %d committed ids on the new primary", r.Present, r.Committed)
	}
	for code := range r.WriteErrs {
		if !strings.HasPrefix(code, "08") && !strings.HasPrefix(code, "57") && code != "network" {
			t.Errorf("write error %s: %s; want class 08 or 57", code, r.Messages[code])
		}
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-readers", "60"}, {"-app", "x"}, {"-ro", "x"}, {"-app", "x", "-ro", "y", "-kill", "k"}, {"extra"},
	} {
		if _, err := parseFlags(args, &bytes.Buffer{}); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
	o, err := parseFlags([]string{"-app", "a", "-ro", "r", "-kill", "k", "-promote", "p"}, &bytes.Buffer{})
	if err != nil || o.clients != 50 || o.readers != 25 || o.maxRecovery != 3*time.Second {
		t.Errorf("defaults: %+v, %v", o, err)
	}
}
