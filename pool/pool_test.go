package pool

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"testing"
	"time"

	"go.uber.org/zap/zaptest"

	"github.com/muxpg/mux/internal/leakcheck"
	"github.com/muxpg/mux/internal/pgtest"
	"github.com/muxpg/mux/internal/wire"
)

var cluster *pgtest.Cluster

func TestMain(m *testing.M) {
	cluster = pgtest.MustStart(pgtest.Options{
		HBA: []string{"host all md5role 127.0.0.1/32 md5"},
	})
	code := func() int {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := cluster.Exec(ctx, `CREATE ROLE scramrole LOGIN PASSWORD 'scrampw';
SET password_encryption = 'md5';
CREATE ROLE md5role LOGIN PASSWORD 'md5pw';`); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		return m.Run()
	}()
	_ = cluster.Stop()
	os.Exit(code)
}

func newPool(t testing.TB, size int, target Target) *Pool {
	t.Helper()
	p := New(Config{
		Target:         target,
		MaxSize:        size,
		ConnectTimeout: 5 * time.Second,
		LoginRetry:     200 * time.Millisecond,
		CheckQuery:     "select 1",
		CheckDelay:     time.Hour,
	}, zaptest.NewLogger(t))
	t.Cleanup(func() {
		p.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.Wait(ctx); err != nil {
			t.Errorf("pool did not close its servers: %v", err)
		}
		leakcheck.Check(t, 5*time.Second)
	})
	return p
}

func target(user, password string) Target {
	return Target{Host: cluster.Host, Port: cluster.Port, Database: "postgres", User: user, Password: password}
}

func TestLoginMethodsAndExec(t *testing.T) {
	for _, tc := range []struct{ user, password string }{
		{"scramrole", "scrampw"},
		{"md5role", "md5pw"},
		{"md5role", "md5" + md5hex("md5pw"+"md5role")}, // an md5 secret answers md5
		{"postgres", ""},                               // trust
	} {
		t.Run(tc.user, func(t *testing.T) {
			p := newPool(t, 1, target(tc.user, tc.password))
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			s, err := p.Acquire(ctx)
			if err != nil {
				t.Fatal(err)
			}
			res, err := s.Exec(ctx, "SELECT current_user, 'a''b'")
			if err != nil || res.Err != nil {
				t.Fatalf("exec: %v %v", err, res.Err)
			}
			if len(res.Rows) != 1 || res.Rows[0][0] != tc.user || res.Rows[0][1] != "a'b" || res.Status != 'I' {
				t.Fatalf("result %+v", res)
			}
			if v, _ := s.Param("server_version"); v == "" {
				t.Fatal("no server_version parameter")
			}
			p.Release(s)
		})
	}
}

func TestWrongPasswordIsNotRetried(t *testing.T) {
	p := newPool(t, 1, target("scramrole", "wrong"))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	start := time.Now()
	_, err := p.Acquire(ctx)
	var le *LoginError
	if !errors.As(err, &le) || le.Err.Code != wire.CodeInvalidPassword {
		t.Fatalf("got %v, want a 28P01 login error", err)
	}
	if time.Since(start) > 2*time.Second {
		t.Fatalf("a wrong password was retried for %v", time.Since(start))
	}
}

func TestUnreachableServerRetriesUntilDeadline(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	tg := target("scramrole", "scrampw")
	tg.Port = port
	p := newPool(t, 2, tg)
	ctx, cancel := context.WithTimeout(context.Background(), 700*time.Millisecond)
	defer cancel()
	_, err = p.Acquire(ctx)
	if err == nil {
		t.Fatal("acquire from a closed port succeeded")
	}
	var ne *net.OpError
	if !errors.As(err, &ne) {
		t.Fatalf("want the connection error, got %v", err)
	}
	if st := p.Stats(); st.Total != 0 {
		t.Fatalf("failed attempts left %d servers counted", st.Total)
	}
}

func TestWaitersAreServedFIFOAndTimeOut(t *testing.T) {
	p := newPool(t, 1, target("scramrole", "scrampw"))
	ctx := context.Background()
	first, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	// A waiter with a short deadline times out.
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, err := p.Acquire(short); !errors.Is(err, ErrWaitTimeout) {
		t.Fatalf("got %v, want ErrWaitTimeout", err)
	}
	// Three waiters get the server in the order they asked.
	order := make(chan int, 3)
	for i := 0; i < 3; i++ {
		go func() {
			s, err := p.Acquire(ctx)
			if err != nil {
				t.Error(err)
				order <- -1
				return
			}
			order <- i
			time.Sleep(10 * time.Millisecond)
			p.Release(s)
		}()
		waitWaiting(t, p, i+1)
	}
	p.Release(first)
	for want := 0; want < 3; want++ {
		if got := <-order; got != want {
			t.Fatalf("waiter %d served in place %d", got, want)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for st := p.Stats(); st.Total != 1 || st.Idle != 1; st = p.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want one idle server", st)
		}
		time.Sleep(time.Millisecond)
	}
}

func waitWaiting(t *testing.T, p *Pool, n int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for p.Stats().Waiting < n {
		if time.Now().After(deadline) {
			t.Fatalf("never saw %d waiters", n)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestBrokenServerIsClosedNotReused(t *testing.T) {
	p := newPool(t, 1, target("scramrole", "scrampw"))
	ctx := context.Background()
	s, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.MarkBroken()
	p.Release(s)
	s2, err := p.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s2 == s {
		t.Fatal("a broken server was lent again")
	}
	// Releasing twice is refused rather than lending one server twice.
	p.Release(s2)
	p.Release(s2)
	if st := p.Stats(); st.Idle != 1 {
		t.Fatalf("double release: stats %+v", st)
	}
}

// AcquireTimeout: a wait past its timeout fails with ErrWaitTimeout and
// leaves the queue; waiters that time out while others are served are
// skipped; a server handed to a waiter just as it gives up goes back to
// the pool, and the waiter records (recycled) are left empty.
func TestAcquireTimeout(t *testing.T) {
	p := newPool(t, 1, target("scramrole", "scrampw"))
	first, err := p.AcquireTimeout(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := p.AcquireTimeout(100 * time.Millisecond); !errors.Is(err, ErrWaitTimeout) {
		t.Fatalf("got %v, want ErrWaitTimeout", err)
	}
	if d := time.Since(start); d < 100*time.Millisecond || d > 3*time.Second {
		t.Fatalf("timed out after %v, want about 100ms", d)
	}
	if n := p.Stats().Waiting; n != 0 {
		t.Fatalf("%d waiters left after a timeout", n)
	}
	// Many short waits race the hand-overs of one server between two
	// long waiters: every server handed out comes back, none is lost.
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 200; i++ {
			if s, err := p.AcquireTimeout(time.Duration(i%3) * time.Millisecond); err == nil {
				p.Release(s)
			} else if !errors.Is(err, ErrWaitTimeout) {
				t.Error(err)
				return
			}
		}
	}()
	served := make(chan error, 2)
	for i := 0; i < 2; i++ {
		go func() {
			for j := 0; j < 50; j++ {
				s, err := p.AcquireTimeout(5 * time.Second)
				if err != nil {
					served <- err
					return
				}
				p.Release(s)
			}
			served <- nil
		}()
	}
	p.Release(first)
	for i := 0; i < 2; i++ {
		if err := <-served; err != nil {
			t.Fatal(err)
		}
	}
	<-done
	deadline := time.Now().Add(5 * time.Second)
	for st := p.Stats(); st.Total != 1 || st.Idle != 1 || st.Waiting != 0; st = p.Stats() {
		if time.Now().After(deadline) {
			t.Fatalf("stats %+v, want one idle server and no waiters", st)
		}
		time.Sleep(time.Millisecond)
	}
	for i := 0; i < 10; i++ {
		w := waiterPool.Get().(*waiter)
		if len(w.ch) != 0 || w.queued || w.expired || !w.deadline.IsZero() {
			t.Fatal("a recycled waiter still holds a value, a deadline or is queued")
		}
	}
}

// The pool's one wait timer: a short wait queued behind a long one (as
// after query_wait_timeout shrinks on reload) still ends on time, the long
// one and a wait with no limit stay queued in order, and the first of
// them gets the server when it comes back.
func TestWaitTimerEndsEachWaitOnTime(t *testing.T) {
	p := newPool(t, 1, target("scramrole", "scrampw"))
	first, err := p.AcquireTimeout(0)
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		s   *Server
		err error
		d   time.Duration
	}
	acquire := func(d time.Duration) <-chan result {
		ch := make(chan result, 1)
		go func() {
			start := time.Now()
			s, err := p.AcquireTimeout(d)
			ch <- result{s, err, time.Since(start)}
		}()
		return ch
	}
	long := acquire(time.Minute)
	waitWaiting(t, p, 1)
	forever := acquire(0)
	waitWaiting(t, p, 2)
	short := acquire(150 * time.Millisecond)
	var r result
	select {
	case r = <-short:
	case <-time.After(10 * time.Second):
		t.Fatal("the short wait is still queued long after its deadline")
	}
	if !errors.Is(r.err, ErrWaitTimeout) || r.d < 150*time.Millisecond || r.d > 3*time.Second {
		t.Fatalf("short wait: %v after %v, want ErrWaitTimeout after about 150ms", r.err, r.d)
	}
	if n := p.Stats().Waiting; n != 2 {
		t.Fatalf("%d waiters after the short one ended, want 2", n)
	}
	p.Release(first)
	r = <-long
	if r.err != nil {
		t.Fatalf("long wait: %v", r.err)
	}
	p.Release(r.s)
	r = <-forever
	if r.err != nil {
		t.Fatalf("unbounded wait: %v", r.err)
	}
	p.Release(r.s)
}

// BenchmarkAcquireWait is the busy pool's hand-over: 16 callers per CPU
// share 2 servers, each waiting (AcquireTimeout, as a client does) and
// releasing at once. One op is one acquire and release.
func BenchmarkAcquireWait(b *testing.B) {
	p := newPool(b, 2, target("scramrole", "scrampw"))
	var held []*Server
	for i := 0; i < 2; i++ { // connect both before timing
		s, err := p.AcquireTimeout(time.Minute)
		if err != nil {
			b.Fatal(err)
		}
		held = append(held, s)
	}
	for _, s := range held {
		p.Release(s)
	}
	b.SetParallelism(16)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			s, err := p.AcquireTimeout(time.Minute)
			if err != nil {
				b.Error(err)
				return
			}
			p.Release(s)
		}
	})
}

// Waits queued in deadline order (one query_wait_timeout) end one by one,
// each at its own deadline, with the timer re-armed for the next.
func TestWaitTimerInOrder(t *testing.T) {
	p := newPool(t, 1, target("scramrole", "scrampw"))
	first, err := p.AcquireTimeout(0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release(first)
	type result struct {
		err error
		d   time.Duration
	}
	var chans []chan result
	for i := 1; i <= 3; i++ {
		ch := make(chan result, 1)
		chans = append(chans, ch)
		limit := time.Duration(i) * 150 * time.Millisecond
		go func() {
			start := time.Now()
			_, err := p.AcquireTimeout(limit)
			ch <- result{err, time.Since(start)}
		}()
		waitWaiting(t, p, i)
	}
	for i, ch := range chans {
		want := time.Duration(i+1) * 150 * time.Millisecond
		var r result
		select {
		case r = <-ch:
		case <-time.After(want + 10*time.Second):
			t.Fatalf("wait %d still queued long after its deadline", i)
		}
		if !errors.Is(r.err, ErrWaitTimeout) || r.d < want || r.d > want+2*time.Second {
			t.Fatalf("wait %d: %v after %v, want ErrWaitTimeout after about %v", i, r.err, r.d, want)
		}
	}
	if n := p.Stats().Waiting; n != 0 {
		t.Fatalf("%d waiters left", n)
	}
}

// LookupParams answers from its last lookup only until a ParameterStatus
// changes a value.
func TestLookupParamsFollowsChanges(t *testing.T) {
	p := newPool(t, 1, target("scramrole", "scrampw"))
	s, err := p.AcquireTimeout(5 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Release(s)
	names := []string{"application_name", "TimeZone", "no_such_parameter"}
	vals := make([]string, len(names))
	s.LookupParams(names, vals)
	if vals[1] == "" || vals[2] != "" {
		t.Fatalf("first lookup %q", vals)
	}
	for _, app := range []string{"first", "second"} {
		if _, err := s.ExecIdle(context.Background(), "SET application_name = '"+app+"'"); err != nil {
			t.Fatal(err)
		}
		s.LookupParams(names, vals)
		if vals[0] != app {
			t.Fatalf("application_name %q after SET to %q", vals[0], app)
		}
	}
	// Another list of names is looked up, not answered from the last one.
	other := []string{"TimeZone"}
	one := make([]string, 1)
	s.LookupParams(other, one)
	if one[0] != vals[1] {
		t.Fatalf("TimeZone %q, want %q", one[0], vals[1])
	}
}

// A caller waiting for another's template fetch gives up when its own
// context ends: the fetch (here against a server that accepts and never
// answers) holds no lock it waits on.
func TestTemplateWaitEndsWithItsContext(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	tg := target("scramrole", "scrampw")
	tg.Port = ln.Addr().(*net.TCPAddr).Port
	p := newPool(t, 2, tg)
	var held []net.Conn
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // never answered
		}
	}()
	t.Cleanup(func() { // before newPool's leak check
		ln.Close()
		<-accepted
		for _, c := range held {
			c.Close()
		}
	})

	first := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		_, err := p.Template(ctx)
		first <- err
	}()
	time.Sleep(100 * time.Millisecond) // the first fetch is under way
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := p.Template(ctx); err == nil {
		t.Fatal("template from a server that never answers")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("second Template call returned after %v, its context ended after 200ms", d.Round(time.Millisecond))
	}
	if err := <-first; err == nil {
		t.Fatal("template from a server that never answers")
	}
}
