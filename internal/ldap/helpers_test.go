package ldap

import (
	"fmt"
	"net"
	"testing"
)

func mustParse(t *testing.T, format string, args ...any) *Options {
	t.Helper()
	o, err := ParseOptions(fmt.Sprintf(format, args...))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// freePort returns a port nothing listens on (for a moment).
func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}
