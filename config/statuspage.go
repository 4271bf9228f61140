package config

import (
	"net"
	"net/netip"
)

// status_page values.
const (
	StatusPageAuto = "auto" // on when http_listen is a loopback address
	StatusPageOn   = "on"
	StatusPageOff  = "off"
)

var statusPageModes = []string{StatusPageAuto, StatusPageOn, StatusPageOff}

// ServesStatusPage reports whether the HTTP endpoint serves the status
// page: status_page = "on", or "auto" with an http_listen whose host is a
// loopback address ("localhost" included; an empty host, which listens on
// every address, is not).
func (c *Config) ServesStatusPage() bool {
	switch c.StatusPage {
	case StatusPageOn:
		return c.HTTPListen != ""
	case StatusPageOff:
		return false
	}
	return isLoopbackListen(c.HTTPListen)
}

func isLoopbackListen(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}
