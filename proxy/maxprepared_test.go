package proxy

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// max_prepared_statements = 0 turns off only prepared statement tracking:
// settings are carried, state pins and LISTEN is fanned out exactly as
// with tracking on, and a client's named statement reaches the server
// under its own name (with tracking, under mux's).
func TestMaxPreparedStatementsZeroKeepsSessionState(t *testing.T) {
	for _, n := range []int{0, 200} {
		t.Run(fmt.Sprintf("max_prepared_statements=%d", n), func(t *testing.T) {
			// One server: every client's transactions run on it in turn.
			m := startMux(t, fmt.Sprintf("default_pool_size = 1\nmax_prepared_statements = %d", n))
			ctx := context.Background()
			simple := "default_query_exec_mode=simple_protocol"
			a, b := m.connect(t, simple), m.connect(t, simple)
			defaults := map[string]string{}
			for _, name := range []string{"TimeZone", "statement_timeout"} {
				defaults[name] = queryString(t, b, "SELECT current_setting($1)", name)
			}
			want := map[string]string{"TimeZone": "Asia/Tokyo", "statement_timeout": "7s"}
			for _, q := range []string{"SET TimeZone = 'Asia/Tokyo'", "SET statement_timeout = '7s'"} {
				if _, err := a.Exec(ctx, q); err != nil {
					t.Fatal(err)
				}
			}
			for i := 0; i < 3; i++ {
				for name, v := range want {
					if got := queryString(t, a, "SELECT current_setting($1)", name); got != v {
						t.Fatalf("round %d: the client that set it sees %s = %q, want %q", i, name, got, v)
					}
					if got := queryString(t, b, "SELECT current_setting($1)", name); got != defaults[name] {
						t.Fatalf("round %d: another client sees %s = %q, want the default %q", i, name, got, defaults[name])
					}
				}
			}

			// A session advisory lock pins a (pin_policy = pin) until unlocked.
			if _, err := a.Exec(ctx, "SELECT pg_advisory_lock(4711)"); err != nil {
				t.Fatal(err)
			}
			pinned := func(reason string) func() bool {
				return func() bool {
					for _, ci := range m.p.Clients() {
						if ci.PinReason == reason {
							return true
						}
					}
					return false
				}
			}
			waitFor(t, "the advisory lock pin", 5*time.Second, pinned("advisory lock"))
			if _, err := a.Exec(ctx, "SELECT pg_advisory_unlock(4711)"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the client to be unpinned", 5*time.Second, pinned(""))

			// LISTEN is mux's: b's notification reaches a between its
			// transactions, and a is not pinned for it.
			if _, err := a.Exec(ctx, "LISTEN jobs"); err != nil {
				t.Fatalf("LISTEN: %v", err)
			}
			if _, err := b.Exec(ctx, "NOTIFY jobs, 'first'"); err != nil {
				t.Fatal(err)
			}
			wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			note, err := a.WaitForNotification(wctx)
			cancel()
			if err != nil || note.Channel != "jobs" || note.Payload != "first" {
				t.Fatalf("notification %+v, %v", note, err)
			}
			if pinned("LISTEN")() {
				t.Fatal("the listening client is pinned")
			}

			// A named statement: its own name on the server only without
			// tracking.
			if _, err := a.PgConn().Prepare(ctx, "mine", "SELECT 42", nil); err != nil {
				t.Fatal(err)
			}
			onServer := queryString(t, a, "SELECT count(*)::text FROM pg_prepared_statements WHERE name = 'mine'")
			if wantN := map[int]string{0: "1", 200: "0"}[n]; onServer != wantN {
				t.Fatalf("statement %q on the server %s times, want %s", "mine", onServer, wantN)
			}
			if got := queryString(t, a, "SELECT 'after'::text"); got != "after" {
				t.Fatal(got)
			}
		})
	}
}
