// Package leakcheck fails a test that leaves mux goroutines running.
package leakcheck

import (
	"runtime"
	"strings"
	"testing"
	"time"
)

// ours marks goroutines started by mux's own packages (not test code).
var ours = []string{"muxpg/mux/proxy.", "muxpg/mux/admin.", "muxpg/mux/pool.", "muxpg/mux/metrics.", "muxpg/mux/internal/"}

// Check waits up to timeout for every goroutine running mux code (outside
// test files) to end, and fails t with their stacks if some do not.
func Check(t testing.TB, timeout time.Duration) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		leaked := leakedStacks()
		if len(leaked) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Errorf("%d leaked goroutine(s):\n\n%s", len(leaked), strings.Join(leaked, "\n\n"))
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func leakedStacks() []string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	var out []string
	for _, g := range strings.Split(string(buf), "\n\n") {
		if isOurs(g) {
			out = append(out, g)
		}
	}
	return out
}

func isOurs(stack string) bool {
	if strings.Contains(stack, "leakcheck.leakedStacks") {
		return false
	}
	if strings.Contains(stack, "testing.tRunner") || strings.Contains(stack, "testing.(*M).") {
		// A goroutine running a test (or TestMain) itself.
		return false
	}
	for _, p := range ours {
		if strings.Contains(stack, p) {
			return true
		}
	}
	return false
}
