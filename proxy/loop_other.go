//go:build !linux

package proxy

import (
	"errors"

	"go.uber.org/zap"

	"github.com/muxpg/mux/pool"
)

// evloop is Linux-only (epoll): elsewhere mux relays with goroutines.
type evloop struct{}

type taskKind uint8

const (
	taskAddClient taskKind = iota
	taskWake
	taskGrant
	taskBack
	taskFlushed
	taskResumeServer
)

type loopTask struct {
	kind taskKind
	c    *clientConn
	s    *pool.Server
	err  error
}

const loopsSupported = false

func newLoop(*zap.Logger) (*evloop, error) { return nil, errors.New("no event loops on this platform") }

func (l *evloop) post(loopTask)                                      {}
func (l *evloop) watch(uint64, func(func(uintptr)) error, bool) bool { return false }
func (l *evloop) forget(*clientConn)                                 {}
func (l *evloop) stop()                                              {}
func (l *evloop) AddServer(*pool.Server) bool                        { return false }
func (l *evloop) PauseServer(*pool.Server, bool)                     {}
func (l *evloop) PokeServer(*pool.Server)                            {}
