package session

import (
	"encoding/binary"
	"sort"
)

// A client's prepared statements as they move to a successor process
// (package handover): by name, with their text and parameter type OIDs.

// Prepared is one of a client's prepared statements; Name "" is the
// unnamed statement.
type Prepared struct {
	Name      string
	Query     string
	ParamOIDs []uint32
}

// Statements returns the client's prepared statements, sorted by name, and
// its unnamed statement if it has one.
func (t *Tracker) Statements() []Prepared {
	out := make([]Prepared, 0, len(t.stmts)+1)
	for name, st := range t.stmts {
		query, oids, ok := splitKey(st.key)
		if ok {
			out = append(out, Prepared{Name: name, Query: query, ParamOIDs: oids})
		}
	}
	if len(t.unnamedParse) > HeaderLenParse {
		if p, ok := parsedUnnamed(t.unnamedParse); ok {
			out = append(out, p)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// HeaderLenParse is a Parse message's header and empty name.
const HeaderLenParse = 5 + 1

// Restore registers statements another process's tracker gave
// (Statements): the pool's servers are prepared with them as the client
// uses them, like statements the client parsed here.
func (t *Tracker) Restore(stmts []Prepared) {
	for _, p := range stmts {
		types := appendTypes(nil, p.ParamOIDs)
		if p.Name == "" {
			t.unnamedParse = appendParse(t.unnamedParse[:0], "", []byte(p.Query), types)
			t.unnamedKey = unnamedKeys.Add(1)
			if t.reg.scan != nil {
				t.unnamedHit = t.reg.scan([]byte(p.Query))
			}
			continue
		}
		if old := t.stmts[p.Name]; old != nil {
			t.reg.release(old)
		}
		t.stmts[p.Name] = t.reg.acquire([]byte(p.Query), types)
	}
}

// appendTypes appends a Parse's parameter type list: an Int16 count and
// the OIDs.
func appendTypes(dst []byte, oids []uint32) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(oids)))
	for _, o := range oids {
		dst = binary.BigEndian.AppendUint32(dst, o)
	}
	return dst
}

// splitTypes reads a Parse's parameter type list.
func splitTypes(types []byte) ([]uint32, bool) {
	if len(types) < 2 {
		return nil, false
	}
	n := int(binary.BigEndian.Uint16(types))
	if len(types) != 2+4*n {
		return nil, false
	}
	var oids []uint32
	for i := 0; i < n; i++ {
		oids = append(oids, binary.BigEndian.Uint32(types[2+4*i:]))
	}
	return oids, true
}

// splitKey reads a registry key (stmtKey: types, a zero byte, the text)
// back.
func splitKey(key string) (string, []uint32, bool) {
	if len(key) < 3 {
		return "", nil, false
	}
	sep := 2 + 4*(int(key[0])<<8|int(key[1]))
	if sep >= len(key) || key[sep] != 0 {
		return "", nil, false
	}
	oids, ok := splitTypes([]byte(key[:sep]))
	return key[sep+1:], oids, ok
}

// parsedUnnamed reads the client's last Parse("") back.
func parsedUnnamed(msg []byte) (Prepared, bool) {
	body := msg[HeaderLenParse:]
	for i, b := range body {
		if b == 0 {
			oids, ok := splitTypes(body[i+1:])
			return Prepared{Query: string(body[:i]), ParamOIDs: oids}, ok
		}
	}
	return Prepared{}, false
}
