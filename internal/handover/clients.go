package handover

// The state of a client moved from one mux process to its successor, and
// its encoding: versioned, every string and list length-prefixed, and
// every length checked against what is left before anything is made, since
// a decoder must not trust the bytes it is given further than that.
//
// A batch (one message on the hand-over socket, with the batch's sockets
// attached) is:
//
//	byte     batchVersion
//	uvarint  number of clients (at most MaxBatch)
//	per client: uvarint length, then the client's bytes:
//	  string database, string user       (its pool: the names it logged in with)
//	  uvarint cancel key PID, bytes secret
//	  varint  connected (Unix nanoseconds)
//	  uvarint n, n × (string name, string value)   reported parameters (TimeZone, …)
//	  uvarint n, n × (string name, string value)   other settings (startup and SET)
//	  uvarint n, n × string                         custom setting names to watch
//	  uvarint n, n × statement                      prepared statements
//	statement: string name ("" is the unnamed one), string query,
//	           uvarint n, n × uint32 parameter type OID (uvarint)
//
// A string is a uvarint length and its bytes.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
)

// batchVersion is the version of the batch encoding this mux writes and
// reads; a successor refuses a batch of another version (its clients then
// stay with their sockets closed by neither side: see SendClients).
const batchVersion = 1

// MaxBatch is the most sockets one message carries: Linux's SCM_MAX_FD.
const MaxBatch = 253

// maxFrame bounds one encoded batch (a batch is also cut at flushBytes,
// so only a client whose own state is larger comes near it).
const maxFrame = 64 << 20

// flushBytes is the size past which a sender ends a batch early.
const flushBytes = 4 << 20

// ShouldFlush reports whether a batch of n clients whose states take about
// size bytes is to be sent now.
func ShouldFlush(n, size int) bool { return n >= MaxBatch || size >= flushBytes }

// Limits on one client's state, so that a hostile length cannot make the
// decoder allocate much before it finds the bytes missing.
const (
	maxListLen = 1 << 20
	maxOIDs    = math.MaxUint16 // Parse's parameter count is an Int16
)

// Param is a name and its value.
type Param struct{ Name, Value string }

// Statement is a client's prepared statement: its name, text and the
// parameter type OIDs its Parse gave.
type Statement struct {
	Name      string
	Query     string
	ParamOIDs []uint32
}

// ClientState is what a successor needs to carry a logged-in client on
// without the client noticing.
type ClientState struct {
	Database, User string
	KeyPID         uint32
	KeySecret      []byte
	Connected      int64 // Unix nanoseconds
	Params         []Param
	Settings       []Param
	CustomNames    []string
	Statements     []Statement
}

// AppendBatch appends the encoding of states (at most MaxBatch).
func AppendBatch(dst []byte, states []ClientState) []byte {
	dst = append(dst, batchVersion)
	dst = binary.AppendUvarint(dst, uint64(len(states)))
	var one []byte
	for i := range states {
		one = appendClient(one[:0], &states[i])
		dst = binary.AppendUvarint(dst, uint64(len(one)))
		dst = append(dst, one...)
	}
	return dst
}

func appendClient(b []byte, s *ClientState) []byte {
	b = appendString(b, s.Database)
	b = appendString(b, s.User)
	b = binary.AppendUvarint(b, uint64(s.KeyPID))
	b = appendString(b, string(s.KeySecret))
	b = binary.AppendVarint(b, s.Connected)
	b = appendParams(b, s.Params)
	b = appendParams(b, s.Settings)
	b = binary.AppendUvarint(b, uint64(len(s.CustomNames)))
	for _, n := range s.CustomNames {
		b = appendString(b, n)
	}
	b = binary.AppendUvarint(b, uint64(len(s.Statements)))
	for _, st := range s.Statements {
		b = appendString(b, st.Name)
		b = appendString(b, st.Query)
		b = binary.AppendUvarint(b, uint64(len(st.ParamOIDs)))
		for _, o := range st.ParamOIDs {
			b = binary.AppendUvarint(b, uint64(o))
		}
	}
	return b
}

func appendParams(b []byte, ps []Param) []byte {
	b = binary.AppendUvarint(b, uint64(len(ps)))
	for _, p := range ps {
		b = appendString(b, p.Name)
		b = appendString(b, p.Value)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// errMalformed is every decoding failure: the bytes are not a batch this
// mux wrote.
var errMalformed = errors.New("handover: malformed client state")

// DecodeBatch decodes a batch AppendBatch made.
func DecodeBatch(b []byte) ([]ClientState, error) {
	if len(b) == 0 {
		return nil, errMalformed
	}
	if b[0] != batchVersion {
		return nil, fmt.Errorf("handover: client state version %d, this mux reads %d", b[0], batchVersion)
	}
	d := decoder{b: b[1:]}
	n := d.count(MaxBatch)
	states := make([]ClientState, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		size := d.count(len(d.b))
		one := decoder{b: d.take(size)}
		if d.err != nil {
			break
		}
		states = append(states, one.client())
		if one.err == nil && len(one.b) != 0 {
			one.err = errMalformed // trailing bytes: not a state this mux wrote
		}
		if one.err != nil {
			d.err = one.err
		}
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = errMalformed
	}
	if d.err != nil {
		return nil, d.err
	}
	return states, nil
}

// decoder reads b; the first error sticks and every later read returns
// zero values.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errMalformed
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a length or count of at most limit.
func (d *decoder) count(limit int) int {
	v := d.uvarint()
	if d.err == nil && v > uint64(limit) {
		d.err = errMalformed
		return 0
	}
	return int(v)
}

func (d *decoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n > len(d.b) {
		d.err = errMalformed
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) string() string { return string(d.take(d.count(len(d.b)))) }

// list reads a count of items each taking at least one byte, so a count
// larger than the bytes left is refused before anything is allocated.
func (d *decoder) list() int { return d.count(min(len(d.b), maxListLen)) }

func (d *decoder) client() ClientState {
	var s ClientState
	s.Database = d.string()
	s.User = d.string()
	pid := d.uvarint()
	if pid > math.MaxUint32 {
		d.err = errMalformed
	}
	s.KeyPID = uint32(pid)
	if sec := d.take(d.count(len(d.b))); len(sec) > 0 {
		s.KeySecret = append([]byte(nil), sec...)
	}
	s.Connected = d.varint()
	s.Params = d.params()
	s.Settings = d.params()
	if n := d.list(); n > 0 {
		s.CustomNames = make([]string, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			s.CustomNames = append(s.CustomNames, d.string())
		}
	}
	if n := d.list(); n > 0 {
		s.Statements = make([]Statement, 0, n)
		for i := 0; i < n && d.err == nil; i++ {
			s.Statements = append(s.Statements, d.statement())
		}
	}
	return s
}

func (d *decoder) varint() int64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Varint(d.b)
	if n <= 0 {
		d.err = errMalformed
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) params() []Param {
	n := d.list()
	if n == 0 {
		return nil
	}
	ps := make([]Param, 0, n)
	for i := 0; i < n && d.err == nil; i++ {
		ps = append(ps, Param{Name: d.string(), Value: d.string()})
	}
	return ps
}

func (d *decoder) statement() Statement {
	st := Statement{Name: d.string(), Query: d.string()}
	n := d.count(min(len(d.b), maxOIDs))
	if n > 0 {
		st.ParamOIDs = make([]uint32, 0, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		o := d.uvarint()
		if o > math.MaxUint32 {
			d.err = errMalformed
		}
		st.ParamOIDs = append(st.ParamOIDs, uint32(o))
	}
	return st
}
