// Package fakepg is a scripted PostgreSQL backend for benchmarks and for
// protocol cases a real server will not produce. It is never a substitute
// for Postgres in correctness tests.
package fakepg

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"io"
	"net"
	"sync"

	"github.com/jackc/pgx/v5/pgproto3"
)

// Server answers every connection with trust login and canned replies:
// a Query returns one row with one int4 column "1" (the pg_settings query
// mux sends for a pool's template returns a few rows); Parse, Bind,
// Describe, Execute, Close and Sync get their usual replies.
type Server struct {
	ln   net.Listener
	wg   sync.WaitGroup
	mu   sync.Mutex
	conn map[net.Conn]struct{}
}

// Start listens on a free loopback port.
func Start() (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{ln: ln, conn: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	return s, nil
}

// Port returns the listening port.
func (s *Server) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Close stops the server and its connections.
func (s *Server) Close() {
	s.ln.Close()
	s.mu.Lock()
	for c := range s.conn {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
}

func (s *Server) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.mu.Lock()
		s.conn[c] = struct{}{}
		s.mu.Unlock()
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			_ = serve(c)
			c.Close()
			s.mu.Lock()
			delete(s.conn, c)
			s.mu.Unlock()
		}()
	}
}

func appendMsg(dst []byte, m interface{ Encode([]byte) ([]byte, error) }) []byte {
	out, err := m.Encode(dst)
	if err != nil {
		panic(err)
	}
	return out
}

// Canned replies.
var (
	rowDesc = appendMsg(nil, &pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{
		{Name: []byte("?column?"), DataTypeOID: 23, DataTypeSize: 4, TypeModifier: -1},
	}})
	dataRow      = appendMsg(nil, &pgproto3.DataRow{Values: [][]byte{[]byte("1")}})
	selectDone   = appendMsg(nil, &pgproto3.CommandComplete{CommandTag: []byte("SELECT 1")})
	readyIdle    = []byte{'Z', 0, 0, 0, 5, 'I'}
	queryReply   = concat(rowDesc, dataRow, selectDone, readyIdle)
	executeReply = concat(dataRow, selectDone)
	settings     = settingsReply()

	parseComplete = []byte{'1', 0, 0, 0, 4}
	bindComplete  = []byte{'2', 0, 0, 0, 4}
	closeComplete = []byte{'3', 0, 0, 0, 4}
	noParams      = []byte{'t', 0, 0, 0, 6, 0, 0}
)

func concat(parts ...[]byte) []byte {
	var b []byte
	for _, p := range parts {
		b = append(b, p...)
	}
	return b
}

func settingsReply() []byte {
	b := appendMsg(nil, &pgproto3.RowDescription{Fields: []pgproto3.FieldDescription{
		{Name: []byte("name"), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1},
		{Name: []byte("context"), DataTypeOID: 25, DataTypeSize: -1, TypeModifier: -1},
	}})
	for _, kv := range [][2]string{
		{"application_name", "user"}, {"search_path", "user"}, {"statement_timeout", "user"},
		{"extra_float_digits", "user"}, {"shared_buffers", "postmaster"},
	} {
		b = appendMsg(b, &pgproto3.DataRow{Values: [][]byte{[]byte(kv[0]), []byte(kv[1])}})
	}
	b = appendMsg(b, &pgproto3.CommandComplete{CommandTag: []byte("SELECT 5")})
	return append(b, readyIdle...)
}

func serve(c net.Conn) error {
	r := bufio.NewReaderSize(c, 8192)
	w := bufio.NewWriterSize(c, 8192)
	var hdr [8]byte
	// Startup (no SSL).
	if _, err := io.ReadFull(r, hdr[:4]); err != nil {
		return err
	}
	n := int(binary.BigEndian.Uint32(hdr[:4]))
	if n < 8 || n > 10000 {
		return io.ErrUnexpectedEOF
	}
	if _, err := r.Discard(n - 4); err != nil {
		return err
	}
	out := appendMsg(nil, &pgproto3.AuthenticationOk{})
	for _, kv := range [][2]string{
		{"server_version", "15.0 (fakepg)"}, {"server_encoding", "UTF8"}, {"client_encoding", "UTF8"},
		{"DateStyle", "ISO, MDY"}, {"IntervalStyle", "postgres"}, {"TimeZone", "UTC"},
		{"integer_datetimes", "on"}, {"standard_conforming_strings", "on"}, {"application_name", ""},
		{"is_superuser", "off"}, {"session_authorization", "fake"},
	} {
		out = appendMsg(out, &pgproto3.ParameterStatus{Name: kv[0], Value: kv[1]})
	}
	out = appendMsg(out, &pgproto3.BackendKeyData{ProcessID: 4242, SecretKey: []byte{1, 2, 3, 4}})
	out = append(out, readyIdle...)
	if _, err := c.Write(out); err != nil {
		return err
	}
	body := make([]byte, 0, 8192)
	for {
		if _, err := io.ReadFull(r, hdr[:5]); err != nil {
			return err
		}
		typ := hdr[0]
		l := int(binary.BigEndian.Uint32(hdr[1:5])) - 4
		if l < 0 || l > 1<<30 {
			return io.ErrUnexpectedEOF
		}
		if cap(body) < l {
			body = make([]byte, l)
		}
		body = body[:l]
		if _, err := io.ReadFull(r, body); err != nil {
			return err
		}
		switch typ {
		case 'Q':
			if bytes.Contains(body, []byte("pg_settings")) {
				w.Write(settings)
			} else {
				w.Write(queryReply)
			}
		case 'P':
			w.Write(parseComplete)
		case 'B':
			w.Write(bindComplete)
		case 'C':
			w.Write(closeComplete)
		case 'D':
			if len(body) > 0 && body[0] == 'S' {
				w.Write(noParams)
			}
			w.Write(rowDesc)
		case 'E':
			w.Write(executeReply)
		case 'S':
			w.Write(readyIdle)
		case 'H':
		case 'X':
			return w.Flush()
		}
		// Flush when the client has nothing more buffered: replies to a
		// pipeline go out together, like a real backend's.
		if r.Buffered() == 0 {
			if err := w.Flush(); err != nil {
				return err
			}
		}
	}
}
