// Package progress tells a person watching a long run (go run ./bench,
// go run ./bench/soak) how far it has come and about how long is left.
package progress

import (
	"fmt"
	"time"
)

// Steps meters a run of a known number of steps of similar length: the
// time left is the average step so far times the steps left.
type Steps struct {
	total int
	done  int
	start time.Time
	now   func() time.Time
}

// NewSteps starts metering total steps now.
func NewSteps(total int) *Steps {
	return &Steps{total: total, start: time.Now(), now: time.Now}
}

// Done marks one more step done and describes the progress, e.g.
// "[3/42, 1m10s elapsed, about 15m10s left]".
func (s *Steps) Done() string {
	s.done++
	elapsed := s.now().Sub(s.start)
	left, ok := StepsLeft(elapsed, s.done, s.total)
	return describe(fmt.Sprintf("%d/%d", s.done, s.total), elapsed, left, ok)
}

// StepsLeft estimates the time the steps left take, from elapsed for the
// done ones; ok is false before the first step is done.
func StepsLeft(elapsed time.Duration, done, total int) (left time.Duration, ok bool) {
	if done <= 0 {
		return 0, false
	}
	if done >= total {
		return 0, true
	}
	return time.Duration(int64(elapsed) / int64(done) * int64(total-done)), true
}

// Timed describes the progress of a phase of known length: at elapsed
// into a phase of length d, with after to follow it (a settling time).
func Timed(elapsed, d, after time.Duration) string {
	left := max(d-elapsed, 0) + after
	pct := 100
	if d > 0 {
		pct = int(min(elapsed, d) * 100 / d)
	}
	return describe(fmt.Sprintf("%d%%", pct), elapsed, left, true)
}

func describe(where string, elapsed, left time.Duration, ok bool) string {
	if !ok {
		return fmt.Sprintf("[%s, %s elapsed]", where, round(elapsed))
	}
	return fmt.Sprintf("[%s, %s elapsed, about %s left]", where, round(elapsed), round(left))
}

// round keeps a duration readable: whole seconds.
func round(d time.Duration) time.Duration {
	return d.Round(time.Second)
}
