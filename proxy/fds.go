package proxy

import (
	"net"
	"sort"

	"github.com/muxpg/mux/admin"
	"github.com/muxpg/mux/internal/rawio"
)

// FDs lists the sockets SHOW FDS shows: the listeners, the logged-in
// clients and the pools' servers, each client linked to the server it
// holds and back.
func (t consoleTarget) FDs() []admin.FD {
	p := t.p
	var out []admin.FD
	p.lnMu.Lock()
	for _, ln := range p.listeners {
		out = append(out, admin.FD{FD: rawio.FD(ln), Task: "pooler", Addr: ln.Addr(), Link: -1})
	}
	p.lnMu.Unlock()
	clientOf := map[uint64]int{} // server id -> the fd of the client holding it
	clients, holds := p.clientFDs()
	for i, c := range clients {
		if holds[i] != 0 {
			clientOf[holds[i]] = c.FD
		}
	}
	serverFD := map[uint64]int{}
	var servers []admin.FD
	for _, pi := range p.Pools() {
		for _, s := range pi.Servers {
			serverFD[s.ID] = s.FD
			link, ok := clientOf[s.ID]
			if !ok {
				link = -1
			}
			servers = append(servers, admin.FD{FD: s.FD, Task: "server", User: pi.Target.User, Database: pi.Target.Database,
				Addr: serverAddr{s.Network, s.Address}, Cancel: uint64(s.BackendPID) << 32, Link: link})
		}
	}
	for i := range clients {
		clients[i].Link = -1
		if fd, ok := serverFD[holds[i]]; ok {
			clients[i].Link = fd
		}
	}
	out = append(out, clients...)
	out = append(out, servers...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].FD < out[j].FD })
	return out
}

// clientFDs returns the logged-in clients' rows of SHOW FDS and the id of
// the server each holds (0: none).
func (p *Proxy) clientFDs() ([]admin.FD, []uint64) {
	list := p.loggedInClients(nil)
	out := make([]admin.FD, 0, len(list))
	holds := make([]uint64, 0, len(list))
	for _, c := range list {
		c.mu.Lock()
		f := admin.FD{FD: rawio.FD(c.conn), Task: "client", User: c.user, Database: c.database,
			Addr: c.conn.RemoteAddr(), Cancel: uint64(c.key.pid)<<32 | uint64(c.key.secret),
			ClientEncoding: c.want.v[paramClientEncoding], StdStrings: c.want.v[paramStandardConformingStrings],
			DateStyle: c.want.v[paramDateStyle], TimeZone: c.want.v[paramTimeZone]}
		var held uint64
		if c.server != nil {
			held = c.server.ID
		}
		c.mu.Unlock()
		out = append(out, f)
		holds = append(holds, held)
	}
	return out, holds
}

// serverAddr is a server's address as pool.ServerInfo gives it.
type serverAddr struct{ network, address string }

func (a serverAddr) Network() string { return a.network }
func (a serverAddr) String() string  { return a.address }

var _ net.Addr = serverAddr{}
