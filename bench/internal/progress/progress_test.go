package progress

import (
	"testing"
	"time"
)

func TestStepsLeft(t *testing.T) {
	for _, tc := range []struct {
		elapsed     time.Duration
		done, total int
		want        time.Duration
		ok          bool
	}{
		{time.Minute, 0, 10, 0, false},
		{time.Minute, 1, 10, 9 * time.Minute, true},
		{10 * time.Minute, 4, 6, 5 * time.Minute, true},
		{time.Minute, 10, 10, 0, true},
		{time.Minute, 12, 10, 0, true},
	} {
		got, ok := StepsLeft(tc.elapsed, tc.done, tc.total)
		if got != tc.want || ok != tc.ok {
			t.Errorf("StepsLeft(%v, %d, %d) = %v, %v; want %v, %v", tc.elapsed, tc.done, tc.total, got, ok, tc.want, tc.ok)
		}
	}
}

func TestStepsDone(t *testing.T) {
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := &Steps{total: 4, start: at, now: func() time.Time { return at }}
	at = at.Add(30 * time.Second)
	if got, want := s.Done(), "[1/4, 30s elapsed, about 1m30s left]"; got != want {
		t.Errorf("first step: %q, want %q", got, want)
	}
	at = at.Add(90 * time.Second)
	if got, want := s.Done(), "[2/4, 2m0s elapsed, about 2m0s left]"; got != want {
		t.Errorf("second step: %q, want %q", got, want)
	}
}

func TestTimed(t *testing.T) {
	for _, tc := range []struct {
		elapsed, d, after time.Duration
		want              string
	}{
		{time.Minute, 10 * time.Minute, 30 * time.Second, "[10%, 1m0s elapsed, about 9m30s left]"},
		{10 * time.Minute, 10 * time.Minute, 30 * time.Second, "[100%, 10m0s elapsed, about 30s left]"},
		{11 * time.Minute, 10 * time.Minute, 0, "[100%, 11m0s elapsed, about 0s left]"},
	} {
		if got := Timed(tc.elapsed, tc.d, tc.after); got != tc.want {
			t.Errorf("Timed(%v, %v, %v) = %q, want %q", tc.elapsed, tc.d, tc.after, got, tc.want)
		}
	}
}
