package pool

import (
	"slices"
	"testing"
)

func TestStmtCacheLRU(t *testing.T) {
	c := NewStmtCache(2)
	if ev := c.Add("a", nil); len(ev) != 0 {
		t.Fatal(ev)
	}
	c.Add("b", nil)
	if !c.Has("a") { // a is now the most recently used
		t.Fatal("a missing")
	}
	if ev := c.Add("c", nil); !slices.Equal(ev, []string{"b"}) {
		t.Fatalf("evicted %v, want [b]", ev)
	}
	if c.Has("b") || !c.Has("a") || !c.Has("c") || c.Len() != 2 {
		t.Fatal("wrong contents after eviction")
	}
	c.Remove("a")
	c.Clear()
	if c.Len() != 0 || c.Has("c") {
		t.Fatal("clear left names")
	}
}
