package proxy

import (
	"context"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// pgx's cancellations through the balancer in front of two instances, as
// pgx's own tests use them: context cancellation again and again, the
// cancel landing on the query's instance and on the other one in turn,
// and CancelRequest while nothing runs, which must be harmless.

// TestFleetCancelRepeatedly: 20 queries cancelled by context, on a victim
// of a and one of b. The balancer alternates a, b for the cancel
// connections, so every pairing occurs: a's query cancelled through a,
// through b (forwarded), b's through a (forwarded) and through b. Each
// query gets 57014 and its connection works afterwards.
func TestFleetCancelRepeatedly(t *testing.T) {
	_, _, bal := startFleet(t)
	victims := []*pgx.Conn{connectVia(t, bal), connectVia(t, bal)} // a, b
	forwarded := 0
	for i := range 20 {
		v := (i / 2) % 2 // a, a, b, b, …; the cancel goes to a, b, a, b, …
		via := bal.Counts()
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { _, err := victims[v].Exec(ctx, "SELECT pg_sleep(30)"); errc <- err }()
		waitSleeping(t, 1)
		start := time.Now()
		cancel()
		wantCancelled(t, errc, 5*time.Second)
		after := bal.Counts()
		to := 0
		if after[1] > via[1] {
			to = 1
		}
		if to != v {
			forwarded++
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("round %d: cancelling took %v", i, d)
		}
		if got := queryString(t, victims[v], "SELECT 'alive'::text"); got != "alive" {
			t.Fatalf("round %d: %q after the cancel", i, got)
		}
	}
	if forwarded != 10 {
		t.Errorf("%d of 20 cancels went to the other instance, want 10", forwarded)
	}
}

// TestFleetCancelWhileIdle: a CancelRequest for a connection with no
// query running, on either instance and through either, cancels nothing:
// the next query, outside and inside a transaction, runs to its end.
func TestFleetCancelWhileIdle(t *testing.T) {
	_, _, bal := startFleet(t)
	victims := []*pgx.Conn{connectVia(t, bal), connectVia(t, bal)}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 4 {
		v := victims[(i/2)%2]
		// pgconn's CancelRequest returns once the server closed the cancel
		// connection, and mux closes it once the cancel has been handled
		// (forwarded ones too): nothing is left in flight.
		if err := v.PgConn().CancelRequest(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := v.Exec(ctx, "SELECT pg_sleep(0.3)"); err != nil {
			t.Fatalf("round %d: query after an idle cancel: %v", i, err)
		}
		mustExec(ctx, t, v, "BEGIN")
		if err := v.PgConn().CancelRequest(ctx); err != nil {
			t.Fatal(err)
		}
		mustExec(ctx, t, v, "SELECT pg_sleep(0.3)", "COMMIT")
	}
}

// waitSleeping waits until n backends run pg_sleep(30).
func waitSleeping(t *testing.T, n int) {
	t.Helper()
	want := itoa(n)
	waitFor(t, "the query running", 5*time.Second, func() bool {
		got, err := cluster.QueryValue(context.Background(),
			"SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()")
		return err == nil && got == want
	})
}
