//go:build !unix

package main

import (
	"os"
	"syscall"
)

// No SIGUSR1/SIGUSR2 here: values no signal has, never delivered.
var sigPause, sigResume os.Signal = syscall.Signal(-1), syscall.Signal(-2)

var extraSignals []os.Signal
