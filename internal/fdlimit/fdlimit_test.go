//go:build unix

package fdlimit

import "testing"

func TestRaiseKeepsAHigherLimit(t *testing.T) {
	cur, _, err := Get()
	if err != nil {
		t.Fatal(err)
	}
	got, err := Raise(cur / 2)
	if err != nil || got != cur {
		t.Fatalf("Raise(%d) = %d, %v; want the limit in force, %d", cur/2, got, err, cur)
	}
}

func TestRaiseLiftsTheSoftLimit(t *testing.T) {
	cur, max, err := Get()
	if err != nil {
		t.Fatal(err)
	}
	defer set(cur, max)
	if err := set(cur/2, max); err != nil { // lowering is always allowed
		t.Fatal(err)
	}
	got, err := Raise(cur)
	if err != nil || got != cur {
		t.Fatalf("Raise(%d) = %d, %v", cur, got, err)
	}
	if c, _, _ := Get(); c != cur {
		t.Fatalf("soft limit %d after Raise, want %d", c, cur)
	}
}
