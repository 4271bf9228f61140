package pool

import (
	"context"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"
)

// TestReadSibling: a ReadSplit pool's sibling lends servers of its own
// (to the primary here, the only host), takes them back through either
// pool, is counted in Stats, and goes with SetConfig.
func TestReadSibling(t *testing.T) {
	tg := target("scramrole", "scrampw")
	hs := NewHostSet(HostSetConfig{Name: "one", Hosts: []HostSpec{{Host: tg.Host, Port: tg.Port}},
		Interval: time.Second, Timeout: 2 * time.Second, RetryMax: 2 * time.Second}, zaptest.NewLogger(t))
	defer hs.Close()
	cfg := Config{Target: tg, MaxSize: 1, ConnectTimeout: 5 * time.Second, LoginRetry: time.Second, Hosts: hs, ReadSplit: true}
	p := New(cfg, zaptest.NewLogger(t))
	defer p.Close()
	r := p.Reads()
	if r == nil || !r.ForReads() || p.ForReads() {
		t.Fatalf("Reads() = %v", r)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rs, err := r.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ws, err := p.Acquire(ctx) // the sibling's server does not count against the pool's size
	if err != nil {
		t.Fatal(err)
	}
	if rs.Pool() != r || ws.Pool() != p || rs.OnStandby() {
		t.Errorf("pools: %p %p, on standby %v", rs.Pool(), ws.Pool(), rs.OnStandby())
	}
	if st := p.Stats(); st.Total != 2 || st.Idle != 0 {
		t.Errorf("Stats with both lent = %+v", st)
	}
	p.Release(rs) // back to the sibling
	p.Release(ws)
	if st, rst := p.Stats(), r.Stats(); st.Total != 2 || st.Idle != 2 || rst.Idle != 1 {
		t.Errorf("Stats after release = %+v, sibling %+v", st, rst)
	}
	if n := len(p.Servers()); n != 2 {
		t.Errorf("Servers() lists %d, want 2", n)
	}
	cfg.ReadSplit = false
	p.SetConfig(cfg)
	if p.Reads() != nil {
		t.Error("SetConfig without ReadSplit kept the sibling")
	}
	if st := p.Stats(); st.Total != 1 {
		t.Errorf("Stats without the sibling = %+v", st)
	}
}
