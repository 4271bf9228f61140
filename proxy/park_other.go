//go:build !linux

package proxy

import "go.uber.org/zap"

// poller is Linux-only (epoll); elsewhere idle clients keep their
// goroutine.
type poller struct{ log *zap.Logger }

func (pl *poller) enabled() bool           { return false }
func (pl *poller) park(c *clientConn) bool { return false }
func (pl *poller) forget(c *clientConn)    {}
func (pl *poller) unwatch(c *clientConn)   {}
func (pl *poller) stop()                   {}

func (pl *poller) count() int { return 0 }
