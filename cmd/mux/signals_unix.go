//go:build unix

package main

import (
	"os"
	"syscall"
)

// PgBouncer's PAUSE and RESUME signals.
var sigPause, sigResume os.Signal = syscall.SIGUSR1, syscall.SIGUSR2

// extraSignals are the signals mux handles beyond the portable ones.
var extraSignals = []os.Signal{syscall.SIGUSR1, syscall.SIGUSR2}
