package admin

// showFDsCols are PgBouncer's SHOW FDS columns. PgBouncer fills password
// and the SCRAM keys for its online restart (-R), which takes the sockets
// over with them; mux's hand-over passes its own state over its own
// socket, so those columns are always NULL here.
var showFDsCols = columns("fd:int4 task:text user:text database:text addr:text port:int4 cancel:int8 link:int4 " +
	"client_encoding:text std_strings:text datestyle:text timezone:text password:text " +
	"scram_client_key:bytea scram_server_key:bytea")

func showFDs(fds []FD) []byte {
	r := newResult(showFDsCols)
	for _, f := range fds {
		addr, port := addrPort(f.Addr, f.Addr)
		var link any
		if f.Link >= 0 {
			link = f.Link
		}
		var user, db any
		if f.Task != "pooler" {
			user, db = f.User, f.Database
		}
		r.row(f.FD, f.Task, user, db, addr, port, int64(f.Cancel), link,
			orNull(f.ClientEncoding), orNull(f.StdStrings), orNull(f.DateStyle), orNull(f.TimeZone), nil, nil, nil)
	}
	return r.finish()
}

func orNull(s string) any {
	if s == "" {
		return nil
	}
	return s
}
