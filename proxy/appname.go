package proxy

import (
	"net"
	"strconv"
	"strings"
)

// defaultAppName is what application_name_add_host puts before the host of
// a client that sent no application_name, as PgBouncer does.
const defaultAppName = "app"

// addClientHost appends the client's address to the application_name it
// logs in with (application_name_add_host), in PgBouncer's format
// "APP - HOST:PORT" ("[HOST]:PORT" for IPv6, "unix:PORT" for a Unix
// socket). Only the login value changes: a later SET application_name is
// the client's own, and parameter sync carries either to each server.
func addClientHost(want *params, st *startup, ignored func(string) bool, local, remote net.Addr) {
	app := defaultAppName
	for _, s := range st.Settings {
		if i, ok := canonicalTracked[s.Name]; ok && i == paramApplicationName && !ignored(s.Name) {
			app = s.Value
		}
	}
	want.set(paramApplicationName, app+" - "+clientHost(local, remote))
}

// clientHost formats a client's address as PgBouncer's pga_details does.
func clientHost(local, remote net.Addr) string {
	if ta, ok := remote.(*net.TCPAddr); ok {
		return net.JoinHostPort(ta.IP.String(), strconv.Itoa(ta.Port))
	}
	// A Unix socket client: the port is the one in the socket's name,
	// .s.PGSQL.PORT.
	port := ""
	if local != nil {
		if i := strings.LastIndexByte(local.String(), '.'); i >= 0 {
			port = local.String()[i+1:]
		}
	}
	return "unix:" + port
}
