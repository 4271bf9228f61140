package proxy

import (
	"context"
	"fmt"
	"testing"
	"time"
)

// server_reset_query_always runs server_reset_query when a transaction-mode
// client lets go of its server: what the session left behind that mux does
// not carry (here a sequence's currval) is gone for the next transaction,
// while the client's SET and prepared statements still follow it.
func TestServerResetQueryAlways(t *testing.T) {
	for _, always := range []bool{false, true} {
		t.Run(fmt.Sprint(always), func(t *testing.T) {
			m := startMux(t, fmt.Sprintf("server_reset_query_always = %v\ndefault_pool_size = 1", always))
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			conn := m.connect(t)
			seq := fmt.Sprintf("reset_always_seq_%v", always)
			if _, err := conn.Exec(ctx, "CREATE SEQUENCE IF NOT EXISTS "+seq); err != nil {
				t.Fatal(err)
			}
			if _, err := conn.Exec(ctx, "SET TimeZone = 'Asia/Tokyo'"); err != nil {
				t.Fatal(err)
			}
			var n int64
			if err := conn.QueryRow(ctx, "SELECT nextval($1)", seq).Scan(&n); err != nil {
				t.Fatal(err)
			}
			// The reset runs after the release; the next transaction waits
			// for the pool's one server until it is back.
			err := conn.QueryRow(ctx, "SELECT currval($1)", seq).Scan(&n)
			switch {
			case always && sqlstate(err) != "55000":
				t.Errorf("currval after a reset: %v, want 55000 (not yet defined in this session)", err)
			case !always && err != nil:
				t.Errorf("currval without reset: %v", err)
			}
			for i := 0; i < 3; i++ {
				if got := queryString(t, conn, "SHOW TimeZone"); got != "Asia/Tokyo" {
					t.Errorf("TimeZone %q after resets, want Asia/Tokyo", got)
				}
				if err := conn.QueryRow(ctx, "SELECT $1::int + 1", i).Scan(&n); err != nil || n != int64(i+1) {
					t.Errorf("prepared statement after resets: %d %v", n, err)
				}
			}
		})
	}
}
