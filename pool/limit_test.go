package pool

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/muxpg/mux/internal/leakcheck"
)

// newLimitedPool is newPool with shared limits and a reserve.
func newLimitedPool(t testing.TB, size int, lims []*Limit, reserve int, reserveTimeout time.Duration) *Pool {
	t.Helper()
	p := New(Config{
		Target:         target("postgres", ""),
		MaxSize:        size,
		ConnectTimeout: 5 * time.Second,
		LoginRetry:     200 * time.Millisecond,
		Limits:         lims,
		Reserve:        reserve,
		ReserveTimeout: reserveTimeout,
	}, zaptest.NewLogger(t))
	t.Cleanup(func() {
		p.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Wait(ctx); err != nil {
			t.Errorf("pool did not close its servers: %v", err)
		}
	})
	return p
}

// checkLeaks checks for leaked goroutines once every pool made after it
// is closed.
func checkLeaks(t *testing.T) {
	t.Cleanup(func() { leakcheck.Check(t, 5*time.Second) })
}

func acquireIn(t *testing.T, p *Pool, d time.Duration) (*Server, error) {
	t.Helper()
	return p.AcquireTimeout(d)
}

// A limit shared by two pools holds across both: the second pool's
// client waits until the first pool's server closes, and times out with
// the usual error if none does.
func TestSharedLimitMakesClientsWait(t *testing.T) {
	checkLeaks(t)
	lim := NewLimit(1)
	a := newLimitedPool(t, 5, []*Limit{lim}, 0, 0)
	b := newLimitedPool(t, 5, []*Limit{lim}, 0, 0)

	sa, err := acquireIn(t, a, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if open, _ := lim.Counts(); open != 1 {
		t.Fatalf("limit counts %d servers, want 1", open)
	}
	// Pool a's server is busy: b cannot evict it, and times out.
	start := time.Now()
	if _, err := acquireIn(t, b, 300*time.Millisecond); !errors.Is(err, ErrWaitTimeout) {
		t.Fatalf("acquire past a full limit: %v, want ErrWaitTimeout", err)
	}
	if waited := time.Since(start); waited < 250*time.Millisecond {
		t.Fatalf("gave up after %v, before the wait timeout", waited)
	}

	// A client of b waits; when a's server comes back (no waiter of a),
	// it is closed to make room, and b's client gets a server.
	got := make(chan error, 1)
	go func() {
		s, err := b.AcquireTimeout(20 * time.Second)
		if err == nil {
			b.Release(s)
		}
		got <- err
	}()
	waitFor(t, func() bool { return b.Stats().Waiting == 1 })
	a.Release(sa)
	select {
	case err := <-got:
		if err != nil {
			t.Fatalf("waiting client: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the waiting client never got a server after the other pool's was released")
	}
	if open, _ := lim.Counts(); open != 1 {
		t.Fatalf("limit counts %d servers, want 1", open)
	}
	if st := a.Stats(); st.Total != 0 {
		t.Fatalf("pool a keeps %d servers; its idle one should have made room", st.Total)
	}
}

// An idle server of another pool sharing the limit is evicted at once.
func TestSharedLimitEvictsIdle(t *testing.T) {
	checkLeaks(t)
	lim := NewLimit(1)
	a := newLimitedPool(t, 5, []*Limit{lim}, 0, 0)
	b := newLimitedPool(t, 5, []*Limit{lim}, 0, 0)
	sa, err := acquireIn(t, a, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	a.Release(sa) // idle in a
	sb, err := acquireIn(t, b, 10*time.Second)
	if err != nil {
		t.Fatalf("acquire with only an idle server in the way: %v", err)
	}
	b.Release(sb)
	if st := a.Stats(); st.Total != 0 {
		t.Fatalf("pool a has %d servers, want its idle one evicted", st.Total)
	}
}

// Raising a limit (reload) wakes the clients it held back.
func TestLimitRaisedWakesWaiters(t *testing.T) {
	checkLeaks(t)
	lim := NewLimit(1)
	a := newLimitedPool(t, 5, []*Limit{lim}, 0, 0)
	s1, err := acquireIn(t, a, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		s, err := a.AcquireTimeout(20 * time.Second)
		if err == nil {
			a.Release(s)
		}
		got <- err
	}()
	waitFor(t, func() bool { return a.Stats().Waiting == 1 })
	lim.SetMax(2)
	select {
	case err := <-got:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("raising the limit woke nobody")
	}
	a.Release(s1)
	if open, _ := lim.Counts(); open != 2 {
		t.Fatalf("limit counts %d, want 2", open)
	}
}

// The reserve opens a server beyond the pool's size only for a client
// that has waited reserve_pool_timeout.
func TestReservePoolAfterTimeout(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reserve int
	}{{"reserve 1", 1}, {"reserve 0", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			checkLeaks(t)
			const timeout = 300 * time.Millisecond
			p := newLimitedPool(t, 1, nil, tc.reserve, timeout)
			s1, err := acquireIn(t, p, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			// s1 comes back after 1.5s, whatever happens (the pool's
			// cleanup waits for it).
			time.AfterFunc(1500*time.Millisecond, func() { p.Release(s1) })
			start := time.Now()
			s2, err := acquireIn(t, p, 10*time.Second)
			if err != nil {
				t.Fatal(err)
			}
			waited := time.Since(start)
			reused := s2 == s1
			p.Release(s2)
			if tc.reserve == 0 {
				if !reused || waited < 1400*time.Millisecond {
					t.Fatalf("without a reserve: waited %v, same server %v; want the first server after its release", waited, reused)
				}
				return
			}
			if reused || waited < timeout-20*time.Millisecond || waited > 1200*time.Millisecond {
				t.Fatalf("with a reserve: waited %v, same server %v; want a new server after about %v", waited, reused, timeout)
			}
			if st := p.Stats(); st.Total != 2 {
				t.Fatalf("pool has %d servers, want 2 (size 1 + reserve 1)", st.Total)
			}
		})
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10s")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
