package login

import (
	"testing"

	"github.com/muxpg/mux/auth"
	"github.com/muxpg/mux/config"
)

// scram_iterations sets the count of the secret derived from a plain
// password; a user without one gets PostgreSQL's default.
func TestSCRAMIterationsOfDerivedSecret(t *testing.T) {
	for _, n := range []int{0, 1, 10000} {
		u, err := NewUser("alice", config.User{Password: "secret"})
		if err != nil {
			t.Fatal(err)
		}
		u.SCRAMIterations = n
		want := n
		if n == 0 {
			want = auth.DefaultSCRAMIterations
		}
		if got := u.scramSecret().Iterations; got != want {
			t.Errorf("SCRAMIterations %d: secret has %d iterations, want %d", n, got, want)
		}
	}
}
