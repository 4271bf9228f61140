package pool

import "container/list"

// StmtCache is the set of prepared statement names on one server
// connection, in least-recently-used order. It is owned by whoever holds
// the server; it is not safe for concurrent use.
type StmtCache struct {
	max   int
	order list.List // of string, most recently used at the back
	byKey map[string]*list.Element
}

// NewStmtCache returns an empty cache holding at most max names.
func NewStmtCache(max int) *StmtCache {
	return &StmtCache{max: max, byKey: map[string]*list.Element{}}
}

// Has reports whether name is prepared, marking it recently used.
func (c *StmtCache) Has(name string) bool {
	e, ok := c.byKey[name]
	if ok {
		c.order.MoveToBack(e)
	}
	return ok
}

// Add records name as prepared and returns the names evicted to make room,
// which the caller must close on the server.
func (c *StmtCache) Add(name string, evicted []string) []string {
	if e, ok := c.byKey[name]; ok {
		c.order.MoveToBack(e)
		return evicted
	}
	for c.max > 0 && c.order.Len() >= c.max {
		front := c.order.Front()
		old := front.Value.(string)
		c.order.Remove(front)
		delete(c.byKey, old)
		evicted = append(evicted, old)
	}
	c.byKey[name] = c.order.PushBack(name)
	return evicted
}

// Remove forgets name.
func (c *StmtCache) Remove(name string) {
	if e, ok := c.byKey[name]; ok {
		c.order.Remove(e)
		delete(c.byKey, name)
	}
}

// Clear forgets every name (after DISCARD ALL or DEALLOCATE ALL).
func (c *StmtCache) Clear() {
	c.order.Init()
	clear(c.byKey)
}

// Len returns the number of names held.
func (c *StmtCache) Len() int { return c.order.Len() }
