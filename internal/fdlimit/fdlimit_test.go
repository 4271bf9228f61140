//go:build unix

package fdlimit

import (
	"os"
	"testing"
)

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

func TestRoomShrinksAsFilesOpen(t *testing.T) {
	before, ok := Room(0)
	if !ok {
		t.Skip("open descriptors are not countable here")
	}
	f, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	after, _ := Room(0)
	if after >= before {
		t.Fatalf("room %d with one more file open, %d before", after, before)
	}
	if r, _ := Room(before + 10); r != 0 {
		t.Fatalf("a reserve beyond the room leaves %d", r)
	}
}
