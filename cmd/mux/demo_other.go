//go:build !unix

package main

import (
	"fmt"
	"io"
)

// demo needs the Unix server programs and their clusters (pgcluster).
func demo(_ []string, _, stderr io.Writer) int {
	fmt.Fprintln(stderr, "mux demo: only on Linux and other Unix systems")
	return exitUsage
}
