//go:build !linux

package evloop

import (
	"errors"

	"go.uber.org/zap"

	"github.com/muxpg/mux/pool"
)

// Loop is Linux-only (epoll): elsewhere mux relays with goroutines.
type Loop struct{}

// Supported reports whether this platform has event loops.
const Supported = false

// New fails: there are no event loops on this platform.
func New(*zap.Logger) (*Loop, error) { return nil, errors.New("no event loops on this platform") }

func (l *Loop) Add(uint64, Conn)                                   {}
func (l *Loop) Post(Conn, Event)                                   {}
func (l *Loop) Watch(uint64, func(func(uintptr)) error, bool) bool { return false }
func (l *Loop) Forget(uint64)                                      {}
func (l *Loop) ResumeServer(*pool.Server)                          {}
func (l *Loop) Stop()                                              {}
func (l *Loop) AddServer(*pool.Server) bool                        { return false }
func (l *Loop) PauseServer(*pool.Server, bool)                     {}
func (l *Loop) PokeServer(*pool.Server)                            {}
